// The pure side of reporting: rates, grouping the funnel rows, reading `since`, and the printed tables.
import { describe, expect, it } from 'vitest';
import { formatStats, table } from '../../src/cli/stats.js';
import type { FunnelRow } from '../../src/db/stats.js';
import { groupSequences, parseSince, rate, type Stats } from '../../src/usecases/stats.js';

const counts = { sent: 0, bounced: 0, humanOpens: 0, machineOpens: 0, humanClicks: 0, botClicks: 0, replies: 0, unsubscribes: 0 };

describe('rate', () => {
  it('is a fraction to three decimals, and null when nothing was sent', () => {
    expect(rate(1, 3)).toBe(0.333);
    expect(rate(2, 3)).toBe(0.667);
    expect(rate(0, 5)).toBe(0);
    expect(rate(0, 0)).toBeNull();
  });
});

describe('groupSequences', () => {
  it('puts the total row aside and keeps the steps in the order the query gave', () => {
    const rows: FunnelRow[] = [
      { sequence: 'a', step: null, ...counts, sent: 4, humanOpens: 1 },
      { sequence: 'a', step: 'intro', ...counts, sent: 2, humanOpens: 1 },
      { sequence: 'a', step: 'follow-up', ...counts, sent: 2 },
      { sequence: 'b', step: null, ...counts },
      { sequence: 'b', step: 'only', ...counts },
    ];
    const out = groupSequences(rows);
    expect(out.map((s) => [s.sequence, s.steps.map((st) => st.step)])).toEqual([
      ['a', ['intro', 'follow-up']],
      ['b', ['only']],
    ]);
    expect(out[0]!.totals).toMatchObject({ sent: 4, humanOpens: 1, openRate: 0.25 });
    expect(out[0]!.steps[0]).toMatchObject({ openRate: 0.5, clickRate: 0, replyRate: 0 });
    expect(out[1]!.totals.openRate).toBeNull();
  });
});

describe('parseSince', () => {
  const now = new Date('2026-03-10T12:00:00Z');
  it('reads a duration back from now', () => {
    expect(parseSince('30d', now).toISOString()).toBe('2026-02-08T12:00:00.000Z');
    expect(parseSince('12h', now).toISOString()).toBe('2026-03-10T00:00:00.000Z');
  });
  it('reads a date or a time', () => {
    expect(parseSince('2026-03-01', now).toISOString()).toBe('2026-03-01T00:00:00.000Z');
    expect(parseSince('2026-03-01T09:30:00Z', now).toISOString()).toBe('2026-03-01T09:30:00.000Z');
  });
  it('refuses anything else, naming the field', () => {
    for (const bad of ['yesterday', '2026-13-45', '30', '']) expect(() => parseSince(bad, now), bad).toThrow(expect.objectContaining({ code: 'invalid_field', field: 'since' }));
  });
});

describe('printed tables', () => {
  it('right-aligns numbers under their header and left-aligns names', () => {
    expect(table(['name', 'sent', 'rate'], [['a-long-name', 5, '50.0%'], ['b', 120, '-']])).toEqual([
      '  name         sent   rate',
      '  a-long-name     5  50.0%',
      '  b             120      -',
    ]);
    expect(table(['name'], [])).toEqual(['  (none)']);
  });

  it('prints every section, with dashes where a rate has no denominator', () => {
    const stats: Stats = {
      since: null,
      sequence: null,
      sequences: [{ sequence: 'notes', steps: [{ step: 'intro', ...counts, sent: 3, humanOpens: 1, openRate: 0.333, clickRate: 0, replyRate: 0 }], totals: { ...counts, sent: 3, humanOpens: 1, openRate: 0.333, clickRate: 0, replyRate: 0 } }],
      personas: [{ persona: 'champion', leads: 3, sent: 3, humanOpens: 1, humanClicks: 0, replies: 0, unsubscribes: 0 }],
      stages: [{ stage: 'awareness', leadsNow: 3, entered: 3, advanced: 0, advancementRate: 0, medianDaysToAdvance: null }, { stage: 'interest', leadsNow: 0, entered: 0, advanced: 0, advancementRate: null, medianDaysToAdvance: null }],
      accounts: [{ account: 'Acme', key: 'acme.test', stage: null, leads: 3, engagedLeads: 0, engagedByPersona: {} }],
    };
    const text = formatStats(stats).join('\n');
    expect(text).toContain('nurture stats (all time)');
    expect(text).toMatch(/notes\/intro\s+3\s+0\s+1\s+33\.3%/);
    expect(text).toMatch(/interest\s+0\s+0\s+0\s+-\s+-/);
    expect(text).toMatch(/Acme\s+-\s+3\s+0\s+-/);
  });
});
