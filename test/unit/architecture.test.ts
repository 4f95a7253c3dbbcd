// The pure core decides; it never touches I/O. This keeps it so: the simulator and the workers can only
// share one engine while the engine needs no database, queue, mail server or network.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const PURE = ['src/engine', 'src/engagement', 'src/advancement', 'src/render'];
// The template loader reads .mjml files: the one door to the disk, kept apart from compile and render.
const ALLOWED_IO = new Set(['src/render/templates.ts']);
const FORBIDDEN = /from ['"]((\.\.\/)+(db|queue|mail|http|usecases|cli|dev)(\/|['"])|(bullmq|ioredis|nodemailer|postgres|drizzle-orm|smtp-server|node:fs|node:fs\/promises|node:net|node:http|node:https|node:child_process)['"/])/;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('architecture', () => {
  it('keeps the pure core free of adapters and I/O', () => {
    const offenders = PURE.flatMap(files)
      .filter((f) => !ALLOWED_IO.has(f))
      .flatMap((f) => readFileSync(f, 'utf8').split('\n').filter((l) => FORBIDDEN.test(l)).map((l) => `${f}: ${l.trim()}`));
    expect(offenders).toEqual([]);
  });

  it('keeps workers thin: each calls one use case and decides nothing', () => {
    for (const f of files('workers').filter((f) => !f.endsWith('index.ts'))) {
      const text = readFileSync(f, 'utf8');
      expect(text.split('\n').length, f).toBeLessThan(40);
      expect(text, f).not.toMatch(/from ['"]\.\.\/src\/(engine|db)\//);
    }
  });
});
