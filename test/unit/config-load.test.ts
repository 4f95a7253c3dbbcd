// The sample configuration is a real funnel that must always load, and a sequence's version follows its
// meaning: the same steps keep their version (so running enrollments stay put); a changed wait gets a new one.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { inspectConfig, loadConfig } from '../../src/config/load.js';

const options = { templatesDir: 'templates' };
const temps: string[] = [];

/** A private copy of the sample config that a test may edit. */
function copyOfSample(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nurture-config-'));
  temps.push(dir);
  cpSync('config', dir, { recursive: true });
  return dir;
}

function edit(file: string, from: string | RegExp, to: string): void {
  const text = readFileSync(file, 'utf8');
  const next = text.replace(from, to);
  expect(next, `${file} should contain ${String(from)}`).not.toBe(text);
  writeFileSync(file, next);
}

const versions = (dir: string) => Object.fromEntries([...loadConfig(dir, options).sequences].map(([id, s]) => [id, s.version]));

afterEach(() => {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('loading the sample configuration', () => {
  it('loads config/ with no errors or warnings and yields its four sequences', () => {
    const { config, issues } = inspectConfig('config', options);
    expect(issues).toEqual([]);
    expect(config).not.toBeNull();
    const loaded = loadConfig('config', options);
    expect([...loaded.sequences.keys()].sort()).toEqual(['awareness-benchmark', 'awareness-rep-notes', 'interest-rep-demo', 'trial-started']);
    // examples/event.json's event starts a sample sequence.
    const event = JSON.parse(readFileSync('examples/event.json', 'utf8')) as { event: string };
    expect([...loaded.sequences.values()].filter((s) => s.entry.on === 'event' && s.entry.event === event.event).map((s) => s.id)).toEqual(['trial-started']);
    expect(loaded.funnel.stages).toEqual(['awareness', 'interest', 'desire', 'action', 'customer', 'advocate']);
    const demo = loaded.sequences.get('interest-rep-demo')!;
    expect(demo.file).toBe(join('config', 'sequences', 'interest-rep-demo.yaml'));
    expect(demo.steps.map((s) => s.type)).toEqual(['email', 'wait', 'branch', 'wait', 'email']);
    // Defaults are filled in from the schema.
    expect(loaded.sequences.get('awareness-benchmark')!.tracking).toEqual({ opens: true, clicks: true });
    for (const seq of loaded.sequences.values()) expect(seq.version).toMatch(/^[0-9a-f]{12}$/);
  });

  it('loads the end-to-end fixture config too', () => {
    expect(inspectConfig('test/fixtures/config/e2e', options).issues).toEqual([]);
  });

  it('gives the same content the same version, wherever it lives', () => {
    const original = versions('config');
    expect(versions(copyOfSample())).toEqual(original);
    expect(new Set(Object.values(original)).size).toBe(4);
  });

  it('keeps the version when only comments and spacing change', () => {
    const original = versions('config');
    const dir = copyOfSample();
    const file = join(dir, 'sequences', 'interest-rep-demo.yaml');
    edit(file, /^name:/m, '# A note for the next marketer: keep the call offer last.\n\nname:');
    edit(file, 'businessDays: 2', 'businessDays:     2    # two working days');
    expect(versions(dir)).toEqual(original);
  });

  it('changes the version of exactly the sequence whose wait changed', () => {
    const original = versions('config');
    const dir = copyOfSample();
    edit(join(dir, 'sequences', 'interest-rep-demo.yaml'), 'businessDays: 2', 'businessDays: 4');
    const changed = versions(dir);
    expect(changed['interest-rep-demo']).not.toBe(original['interest-rep-demo']);
    expect(changed['awareness-benchmark']).toBe(original['awareness-benchmark']);
    expect(changed['awareness-rep-notes']).toBe(original['awareness-rep-notes']);
  });
});
