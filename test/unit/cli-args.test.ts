// A count given on the command line is checked before anything connects: `-n abc` is an error that
// names the option, never a silent empty listing.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const nurture = (...args: string[]) => spawnSync(process.execPath, ['bin/nurture.js', ...args], { encoding: 'utf8', timeout: 60_000 });

describe('counts on the command line', () => {
  it.each([
    ['logs', '-n', 'abc'],
    ['messages', '-n', '5x'],
    ['fanout', '--status', '-n', '1.5'],
  ])('nurture %s %s %s says which option wants a whole number', (...args) => {
    const r = nurture(...args);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`-n expects a whole number, not "${args[args.length - 1]}"`);
  });
});
