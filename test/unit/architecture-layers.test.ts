// The arrows run one way: entry points (http, cli, workers) call use cases, use cases call the core and the
// adapters, and nothing below reaches back up. Use cases don't import each other in a circle either.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const importsOf = (file: string) =>
  [...readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)\s[^;]*?from\s+['"](\.[^'"]+)['"]/gm)].map((m) => normalize(join(dirname(file), m[1]!.replace(/\.js$/, '.ts'))));

describe('layers', () => {
  it('keeps use cases and adapters free of the entry points (http, cli, workers)', () => {
    const below = ['src/usecases', 'src/db', 'src/queue', 'src/mail', 'src/config'].flatMap(files);
    const offenders = below.flatMap((f) => importsOf(f).filter((i) => /^(src\/(http|cli)\/|workers\/)/.test(i)).map((i) => `${f} → ${i}`));
    expect(offenders).toEqual([]);
  });

  it('has no import cycles among the use cases', () => {
    const useCases = files('src/usecases');
    const graph = new Map(useCases.map((f) => [f, importsOf(f).filter((i) => i.startsWith('src/usecases/'))]));
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') return void cycles.push([...path.slice(path.indexOf(f)), f].join(' → '));
      state.set(f, 'open');
      for (const next of graph.get(f) ?? []) visit(next, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of useCases) visit(f, []);
    expect(cycles).toEqual([]);
  });
});
