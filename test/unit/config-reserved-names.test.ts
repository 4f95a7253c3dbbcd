// Names every JavaScript object already has (__proto__, constructor, toString) are not names a marketer can
// give a persona, stage or sender: the configuration refuses them with a clear error, so no lookup can
// ever find Object.prototype where a configured name was meant.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inspectConfig } from '../../src/config/load.js';
import { isReservedName } from '../../src/config/schema.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** The e2e configuration with funnel.yaml's personas line replaced. */
function withPersonas(personas: string) {
  const dir = mkdtempSync(join(tmpdir(), 'nurture-reserved-'));
  dirs.push(dir);
  cpSync('test/fixtures/config/e2e', dir, { recursive: true });
  const funnel = readFileSync(join(dir, 'funnel.yaml'), 'utf8');
  writeFileSync(join(dir, 'funnel.yaml'), funnel.replace(/^personas:\n(?:  .*\n)+/m, `personas:\n${personas}`));
  return inspectConfig(dir, { templatesDir: 'templates', cwd: dir });
}

describe('reserved names in the configuration', () => {
  it.each(['__proto__', 'constructor', 'toString'])('refuses a persona named %s', (name) => {
    const { config, issues } = withPersonas(`  champion: { label: Champion }\n  economic_buyer: { label: Economic buyer }\n  "${name}": { label: Sneaky }\n`);
    expect(config).toBeNull();
    const errors = issues.filter((i) => i.severity === 'error');
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((i) => i.file === 'funnel.yaml')).toBe(true);
    // Pointed at the key, on line 6 of funnel.yaml, with what is wrong.
    expect(errors[0]).toMatchObject({ line: 6, column: 3, code: name === '__proto__' ? 'reserved_name' : 'invalid_name' });
    expect(errors[0]!.message).toContain('is a reserved name');
  });

  it('still loads the same configuration with ordinary names', () => {
    const { config, issues } = withPersonas('  champion: { label: Champion }\n  economic_buyer: { label: Economic buyer }\n');
    expect(issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(Object.keys(config!.funnel.personas)).toEqual(['champion', 'economic_buyer']);
  });

  it('knows which names are reserved', () => {
    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']) expect(isReservedName(name), name).toBe(true);
    for (const name of ['champion', 'proto', 'constructors', 'economic_buyer']) expect(isReservedName(name), name).toBe(false);
  });
});
