// `nurture simulate` on the sample configuration (config/, templates/), with the example lead and events.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseWhen, simulateCommand, type SimulateOptions } from '../../src/cli/simulate.js';

const root = join(import.meta.dirname, '..', '..');
const fixtures = join(root, 'test', 'fixtures', 'simulate');

async function run(opts: Partial<SimulateOptions> & { sequenceId: string }): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const code = await simulateCommand({
    leadFile: join(fixtures, 'lead.yaml'),
    start: '2026-03-02 09:00',
    json: false,
    configDir: join(root, 'config'),
    templatesDir: join(root, 'templates'),
    write: (l) => lines.push(l),
    ...opts,
  });
  return { code, lines };
}
/** The detail column of each timeline line, without the two time columns. */
const details = (lines: string[]) => lines.filter((l) => /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}Z/.test(l)).map((l) => l.slice(46).trim());

describe('nurture simulate', () => {
  it('a reply exits the one-to-one sequence, and nothing follows', async () => {
    const { code, lines } = await run({ sequenceId: 'awareness-rep-notes', eventsFile: join(fixtures, 'events-reply.yaml') });
    expect(code).toBe(0);
    expect(lines[0]).toMatch(/^awareness-rep-notes \(one_to_one, version [0-9a-f]{12}\) for a champion in interest, time zone America\/New_York$/);
    expect(lines[1]).toMatch(/^note: this lead \(champion in interest\) is outside the audience of awareness-rep-notes/);
    expect(details(lines)).toEqual([
      'send intro (value) from owner, template intro-note',
      'wait until Thu 2026-03-05 09:00 EST (wait give-it-time)',
      '• lead replied',
      'exit replied',
    ]);
    expect(lines.at(-1)).toBe('2026-03-03 16:00Z  Tue 2026-03-03 11:00 EST     exit replied');
  });

  it('without events, the interest sequence nudges, holds its pitch at the value-first gate, then skips it', async () => {
    const { code, lines } = await run({ sequenceId: 'interest-rep-demo' });
    expect(code).toBe(0);
    expect(lines.filter((l) => l.startsWith('note:'))).toEqual([]);
    expect(details(lines)).toEqual([
      'send playbook-note (value) from owner, template followup-note',
      'wait until Wed 2026-03-04 09:00 EST (wait wait-for-read)',
      'branch read-it → nudge-wait because did not open playbook-note',
      'wait until Mon 2026-03-09 09:00 EDT (wait nudge-wait)',
      'hold offer-call until Mon 2026-03-23 09:00 EDT: value-first gate: 0 of 2 value pieces engaged',
      'skip offer-call: value-first gate timed out after 14d with 0 of 2 value pieces',
      'exit completed',
    ]);
    expect(lines.find((l) => l.includes('skip offer-call'))!.startsWith('2026-03-23 13:00Z  Mon 2026-03-23 09:00 EDT')).toBe(true);
  });

  it('with the example events, the lead reads, engages with two value pieces, and gets the pitch', async () => {
    const { lines } = await run({ sequenceId: 'interest-rep-demo', eventsFile: join(fixtures, 'events.yaml') });
    const d = details(lines);
    expect(d).toContain('branch read-it → offer-call because opened playbook-note');
    expect(d).toContain('hold offer-call until Wed 2026-03-18 10:00 EDT: value-first gate: 1 of 2 value pieces engaged');
    expect(lines.find((l) => l.endsWith('send offer-call (pitch) from owner, template pitch-demo'))!.slice(0, 43)).toBe('2026-03-05 21:05Z  Thu 2026-03-05 16:05 EST');
    expect(d.at(-1)).toBe('exit completed');
  });

  it('an out-of-office holds the follow-up until the person is back, then waits for the window', async () => {
    const { lines } = await run({ sequenceId: 'awareness-rep-notes', eventsFile: join(fixtures, 'events-ooo.yaml') });
    expect(details(lines)).toEqual([
      'send intro (value) from owner, template intro-note',
      'wait until Thu 2026-03-05 09:00 EST (wait give-it-time)',
      '• out-of-office reply, back Mon 2026-03-16 08:00 EDT',
      'wait until Mon 2026-03-16 08:00 EDT (out of office)',
      'defer follow-up until Mon 2026-03-16 08:30 EDT (window)',
      'send follow-up (value) from owner, template followup-note',
      'exit completed',
    ]);
  });

  it('the segmented sequence sends from the brand and respects the funnel window', async () => {
    const { lines } = await run({ sequenceId: 'awareness-benchmark', start: '2026-03-07 10:00' }); // a Saturday
    expect(details(lines)).toEqual([
      'defer benchmark until Mon 2026-03-09 08:30 EDT (window)',
      'send benchmark (value) from brand, template value-benchmark',
      'wait until Mon 2026-03-16 08:30 EDT (wait a-week-later)',
      'send playbook (value) from brand, template value-playbook',
      'exit completed',
    ]);
  });

  it('reads the lead file nurture preview reads (examples/lead.yaml); the stage defaults to the sequence stage', async () => {
    const { code, lines } = await run({ sequenceId: 'awareness-rep-notes', leadFile: join(root, 'examples', 'lead.yaml') });
    expect(code).toBe(0);
    expect(lines[0]).toContain('for a champion in awareness, time zone America/New_York');
    expect(lines.filter((l) => l.startsWith('note:'))).toEqual([]);
    expect(details(lines)).toEqual([
      'send intro (value) from owner, template intro-note',
      'wait until Thu 2026-03-05 09:00 EST (wait give-it-time)',
      'send follow-up (value) from owner, template followup-note',
      'exit completed',
    ]);
  });

  it('--json prints one JSON object per line', async () => {
    const { code, lines } = await run({ sequenceId: 'awareness-rep-notes', eventsFile: join(fixtures, 'events-reply.yaml'), json: true, start: '2026-03-02T14:00:00Z' });
    expect(code).toBe(0);
    const rows = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows[0]).toMatchObject({ kind: 'note' });
    expect(rows.slice(1).map((r) => r.type)).toEqual(['send', 'wakeAt', 'reply', 'exit']);
    expect(rows[1]).toEqual({
      at: '2026-03-02T14:00:00.000Z',
      local: 'Mon 2026-03-02 09:00 EST',
      kind: 'command',
      type: 'send',
      step: 'intro',
      detail: 'send intro (value) from owner, template intro-note',
      command: { type: 'send', step: 'intro', kind: 'value', template: 'intro-note' },
    });
    expect(rows.at(-1)).toMatchObject({ at: '2026-03-03T16:00:00.000Z', command: { type: 'exit', reason: 'replied' } });
  });

  it('reports every problem in the lead and events files with file:line:column', async () => {
    const bad = await run({ sequenceId: 'awareness-rep-notes', leadFile: join(fixtures, 'lead-invalid.yaml') });
    expect(bad.code).toBe(1);
    expect(bad.lines.map((l) => l.replace(/^.*lead-invalid\.yaml/, 'lead-invalid.yaml'))).toEqual([
      'lead-invalid.yaml:2:10: error: unknown persona "champoin" (did you mean champion?); personas are champion, economic_buyer, technical_evaluator, end_user [unknown_persona]',
      'lead-invalid.yaml:4:11: error: timeZone: "Mars/Olympus" is not an IANA time zone such as Europe/Berlin [invalid_value]',
      'lead-invalid.yaml:5:18: error: account.name: Too small: expected string to have >=1 characters [invalid_value]',
    ]);
    const events = await run({ sequenceId: 'awareness-rep-notes', eventsFile: join(fixtures, 'events-invalid.yaml') });
    expect(events.code).toBe(1);
    const where = events.lines.map((l) => /events-invalid\.yaml:(\d+:\d+): error: .*\[(\w+)\]$/.exec(l)?.slice(1));
    expect(where).toEqual([['2:49', 'unknown_step'], ['3:11', 'invalid_value'], ['4:24', 'invalid_value']]);
    expect(events.lines[0]).toContain('"playbok-note" is not an email step of awareness-rep-notes');
  });

  it('runs the README\'s command with the shipped examples/lead.yaml and examples/events.yaml', async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const m = /npx nurture simulate (\S+) --lead (\S+) --events (\S+) --start "([^"]+)"/.exec(readme);
    expect(m, 'the README shows a nurture simulate command with --events').not.toBeNull();
    const [, sequenceId, lead, events, start] = m!;
    expect(existsSync(join(root, events!))).toBe(true);
    const { code, lines } = await run({ sequenceId: sequenceId!, leadFile: join(root, lead!), eventsFile: join(root, events!), start: start! });
    expect(code).toBe(0);
    const d = details(lines);
    expect(d).toContain('branch read-it → offer-call because opened playbook-note');
    expect(d).toContain('send offer-call (pitch) from owner, template pitch-demo');
    expect(d.at(-1)).toBe('exit completed');
  });

  it('reads the events file docs/simulate.md shows', async () => {
    const doc = readFileSync(join(root, 'docs', 'simulate.md'), 'utf8');
    const block = /```yaml\n(events:\n[\s\S]*?)```/.exec(doc)![1]!;
    const dir = mkdtempSync(join(tmpdir(), 'nurture-sim-doc-'));
    try {
      writeFileSync(join(dir, 'events.yaml'), block);
      const { code, lines } = await run({ sequenceId: 'interest-rep-demo', leadFile: join(root, 'examples', 'lead.yaml'), eventsFile: join(dir, 'events.yaml') });
      expect(code).toBe(0);
      expect(details(lines)).toContain('• lead replied');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an unknown sequence, a missing file and a bad --start', async () => {
    const unknown = await run({ sequenceId: 'interest-rep-dmeo' });
    expect(unknown).toEqual({ code: 1, lines: ['unknown sequence "interest-rep-dmeo" (did you mean interest-rep-demo?); sequences are awareness-benchmark, awareness-rep-notes, interest-rep-demo, trial-started'] });
    const missing = await run({ sequenceId: 'interest-rep-demo', leadFile: join(fixtures, 'nope.yaml') });
    expect(missing.code).toBe(1);
    expect(missing.lines[0]).toMatch(/nope\.yaml:1:1: error: cannot read .*nope\.yaml \[file_missing\]$/);
    const start = await run({ sequenceId: 'interest-rep-demo', start: 'next tuesday' });
    expect(start.code).toBe(1);
    expect(start.lines[0]).toContain('--start "next tuesday" is not a time');
  });

  it('reads times as ISO with an offset, as local times in the lead zone, or as a duration after the start', () => {
    const start = new Date('2026-03-02T14:00:00Z');
    expect(parseWhen('2026-03-02T09:00:00-05:00', 'Europe/Berlin', start)).toEqual(new Date('2026-03-02T14:00:00Z'));
    expect(parseWhen('2026-03-02 09:00', 'Europe/Berlin', start)).toEqual(new Date('2026-03-02T08:00:00Z'));
    expect(parseWhen('2026-07-02', 'Europe/Berlin', start)).toEqual(new Date('2026-07-01T22:00:00Z'));
    expect(parseWhen('+1d2h', 'UTC', start)).toEqual(new Date('2026-03-03T16:00:00Z'));
    expect(parseWhen('2026-13-02 09:00', 'UTC', start)).toBeNull();
    expect(parseWhen('+soon', 'UTC', start)).toBeNull();
    expect(parseWhen('yesterday', 'UTC', start)).toBeNull();
  });
});
