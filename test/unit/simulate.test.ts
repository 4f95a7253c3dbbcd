import { describe, expect, it } from 'vitest';
import { formatLocal, simulate, type SimEvent, type TimelineEntry } from '../../src/engine/simulate.js';
import { isInWindow } from '../../src/engine/time.js';
import { at, makeFunnel, makeSequence } from '../fixtures/simulate/engine.js';

const window = { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' };
const funnel = makeFunnel({ defaults: { timeZone: 'America/New_York', window } });
const lead = { persona: 'champion', stage: 'interest', timeZone: 'Europe/Berlin' };
const start = at('2026-03-02T08:00:00Z'); // Monday 09:00 in Berlin

const drip = makeSequence({
  steps: [
    { id: 'one', type: 'email', template: 't' },
    { id: 'pause', type: 'wait', for: '2d' },
    { id: 'two', type: 'email', template: 't', kind: 'pitch', gate: { valuePieces: 1, timeout: '5d', onTimeout: 'skip' } },
    { id: 'three', type: 'email', template: 't' },
  ],
}, 'drip');

const sentSteps = (t: TimelineEntry[]) => t.filter((e) => e.type === 'send').map((e) => e.step);
const commands = (t: TimelineEntry[]) => t.filter((e) => e.kind === 'command').map((e) => e.type);

describe('simulate', () => {
  it('walks the sequence on a virtual clock, recording each command with its time and the lead local time', () => {
    const t = simulate({ sequence: drip, funnel, lead, events: [], start });
    expect(sentSteps(t)).toEqual(['one', 'three']);
    expect(commands(t)).toEqual(['send', 'wakeAt', 'hold', 'skip', 'send', 'exit']);
    const hold = t.find((e) => e.type === 'hold')!;
    expect(hold.at).toEqual(at('2026-03-04T08:00:00Z'));
    expect(hold.local).toBe('Wed 2026-03-04 09:00 GMT+1');
    expect(hold.detail).toBe('hold two until Mon 2026-03-09 09:00 GMT+1: value-first gate: 0 of 1 value pieces engaged');
    const skip = t.find((e) => e.type === 'skip')!;
    expect(skip.at).toEqual(at('2026-03-09T08:00:00Z'));
    expect(t.at(-1)).toMatchObject({ kind: 'command', type: 'exit', detail: 'exit completed' });
  });

  it('uses the lead zone for windows: a start outside the window defers to the lead morning', () => {
    const t = simulate({ sequence: drip, funnel, lead, events: [], start: at('2026-03-02T05:00:00Z') }); // 06:00 Berlin
    expect(t[0]).toMatchObject({ type: 'defer', detail: 'defer one until Mon 2026-03-02 09:00 GMT+1 (window)' });
    expect(t[1]).toMatchObject({ type: 'send', at: at('2026-03-02T08:00:00Z') });
  });

  it('a click in a value email is a value piece: the gate opens at once, inside the window', () => {
    const events: SimEvent[] = [{ at: at('2026-03-02T12:00:00Z'), type: 'click', step: 'one' }];
    const t = simulate({ sequence: drip, funnel, lead, events, start });
    expect(sentSteps(t)).toEqual(['one', 'two', 'three']);
    expect(t.find((e) => e.step === 'two' && e.type === 'send')!.at).toEqual(at('2026-03-04T08:00:00Z'));
    // three follows two at once, but the lead cap of the sample funnel is not set here, so only the window applies.
    expect(t.find((e) => e.step === 'three' && e.type === 'send')!.at).toEqual(at('2026-03-04T08:00:00Z'));
  });

  it('a value:* tag counts as a value piece wherever it was clicked; a plain open does not', () => {
    const opened = simulate({ sequence: drip, funnel, lead, events: [{ at: at('2026-03-02T12:00:00Z'), type: 'open', step: 'one' }], start });
    expect(sentSteps(opened)).toEqual(['one', 'three']);
    const pitchy = makeSequence({ steps: [{ id: 'p', type: 'email', template: 't', kind: 'pitch' }, { id: 'w', type: 'wait', for: '1d' }, { id: 'gated', type: 'email', template: 't', kind: 'pitch', gate: { valuePieces: 1, timeout: '3d' } }] });
    const untagged = simulate({ sequence: pitchy, funnel, lead, events: [{ at: at('2026-03-02T12:00:00Z'), type: 'click', step: 'p' }], start });
    expect(sentSteps(untagged)).toEqual(['p']);
    const tagged = simulate({ sequence: pitchy, funnel, lead, events: [{ at: at('2026-03-02T12:00:00Z'), type: 'click', step: 'p', tag: 'value:guide' }], start });
    expect(sentSteps(tagged)).toEqual(['p', 'gated']);
  });

  it('engagement that arrives while a pitch is held releases it at that moment', () => {
    const events: SimEvent[] = [{ at: at('2026-03-05T10:30:00Z'), type: 'click', step: 'one' }];
    const t = simulate({ sequence: drip, funnel, lead, events, start });
    expect(t.find((e) => e.type === 'send' && e.step === 'two')!.at).toEqual(at('2026-03-05T10:30:00Z'));
  });

  it('ignores an open of a step that has not been sent yet, and says so', () => {
    const t = simulate({ sequence: drip, funnel, lead, events: [{ at: at('2026-03-02T07:00:00Z'), type: 'click', step: 'one' }], start: at('2026-03-02T06:00:00Z') });
    expect(t.find((e) => e.kind === 'event')!.detail).toBe('lead clicked a link in one — ignored: one has not been sent');
    expect(sentSteps(t)).toEqual(['one', 'three']);
  });

  it.each([
    ['reply', 'replied'],
    ['unsubscribe', 'unsubscribed'],
    ['bounce', 'bounced'],
  ] as const)('a %s exits, and nothing is sent after it', (type, reason) => {
    const t = simulate({ sequence: drip, funnel, lead, events: [{ at: at('2026-03-03T10:00:00Z'), type }], start });
    const exit = t.findIndex((e) => e.type === 'exit');
    expect(t[exit]).toMatchObject({ at: at('2026-03-03T10:00:00Z'), detail: `exit ${reason}` });
    expect(t.slice(exit).filter((e) => e.type === 'send')).toEqual([]);
    expect(t.at(-1)).toBe(t[exit]);
  });

  it('an out-of-office postpones the next send until the person is back, then the window', () => {
    const back = at('2026-03-14T06:00:00Z'); // a Saturday
    const t = simulate({ sequence: drip, funnel, lead, events: [{ at: at('2026-03-03T10:00:00Z'), type: 'out_of_office', until: back }], start });
    expect(t.find((e) => e.type === 'wakeAt' && e.at.getTime() === at('2026-03-03T10:00:00Z').getTime())!.detail).toContain('out of office');
    const hold = t.find((e) => e.type === 'hold' || e.type === 'defer')!;
    expect(hold.at.getTime()).toBeGreaterThanOrEqual(back.getTime());
    for (const s of t.filter((e) => e.type === 'send' && e.step !== 'one')) {
      expect(s.at.getTime()).toBeGreaterThanOrEqual(at('2026-03-16T08:00:00Z').getTime()); // Monday 09:00 Berlin
    }
  });

  it('caps count the sends the simulator made and those it was told about, and defer to the right moment', () => {
    const capped = makeFunnel({ defaults: { timeZone: 'UTC' }, caps: { lead: { max: 2, per: '7d' } } });
    const burst = makeSequence({ steps: [{ id: 'a', type: 'email', template: 't' }, { id: 'b', type: 'email', template: 't' }, { id: 'c', type: 'email', template: 't' }] });
    const t = simulate({ sequence: burst, funnel: capped, lead: { persona: 'champion', stage: 'interest' }, events: [], start, priorSends: { lead: [at('2026-02-27T12:00:00Z')] } });
    expect(t.filter((e) => e.type === 'send').map((e) => [e.step, e.at.toISOString()])).toEqual([
      ['a', '2026-03-02T08:00:00.000Z'],
      ['b', '2026-03-06T12:00:00.000Z'], // the prior send ages out
      ['c', '2026-03-09T08:00:00.000Z'], // a ages out
    ]);
    expect(t.filter((e) => e.type === 'defer').map((e) => e.detail)).toEqual([
      'defer b until Fri 2026-03-06 12:00 UTC (lead cap)',
      'defer c until Mon 2026-03-09 08:00 UTC (lead cap)',
    ]);
  });

  it('branches on what the scripted lead did', () => {
    const seq = makeSequence({ steps: [{ id: 'a', type: 'email', template: 't' }, { id: 'w', type: 'wait', for: '1d' }, { id: 'fork', type: 'branch', when: { opened: 'a' }, then: 'warm' }, { id: 'cold', type: 'email', template: 't' }, { id: 'warm', type: 'email', template: 't' }] });
    const opened = simulate({ sequence: seq, funnel, lead, events: [{ at: at('2026-03-02T09:00:00Z'), type: 'open', step: 'a' }], start });
    expect(opened.find((e) => e.type === 'branch')!.detail).toBe('branch fork → warm because opened a');
    expect(sentSteps(opened)).toEqual(['a', 'warm']);
    expect(sentSteps(simulate({ sequence: seq, funnel, lead, events: [], start }))).toEqual(['a', 'cold', 'warm']);
  });

  it('engagement that crosses the funnel threshold advances the lead, which exits the sequence', () => {
    const f = makeFunnel({ advancement: { interest: { when: { all: [{ score: { gte: 8 } }, { valuePieces: { gte: 2 } }] } } }, scoring: { weights: { open: 1, click: 3, value_click: 5, reply: 10 } } });
    const events: SimEvent[] = [
      { at: at('2026-03-02T09:00:00Z'), type: 'click', step: 'one' },
      { at: at('2026-03-02T09:05:00Z'), type: 'click', step: 'one', tag: 'value:guide' },
    ];
    const t = simulate({ sequence: drip, funnel: f, lead, events, start });
    const advance = t.find((e) => e.kind === 'advance')!;
    expect(advance).toMatchObject({ at: at('2026-03-02T09:05:00Z') });
    expect(advance.detail).toMatch(/^lead advanced interest → desire by advancement.interest because score 10 ≥ 8; 2 value pieces ≥ 2$/);
    expect(t.at(-1)).toMatchObject({ type: 'exit', detail: 'exit advanced (lead moved to desire)' });
  });

  it('stops at until, saying what is due next', () => {
    const slow = makeSequence({ steps: [{ id: 'a', type: 'email', template: 't' }, { id: 'w', type: 'wait', for: '30d' }, { id: 'b', type: 'email', template: 't' }] });
    const t = simulate({ sequence: slow, funnel, lead, events: [], start, until: at('2026-03-20T00:00:00Z') });
    expect(sentSteps(t)).toEqual(['a']);
    expect(t.at(-1)).toMatchObject({ kind: 'stop', at: at('2026-03-20T00:00:00Z') });
    expect(t.at(-1)!.detail).toContain('w is due Wed 2026-04-01 10:00 GMT+2');
    // The default horizon is 90 days.
    const long = makeSequence({ steps: [{ id: 'a', type: 'email', template: 't' }, { id: 'w', type: 'wait', for: '91d' }, { id: 'b', type: 'email', template: 't' }] });
    expect(simulate({ sequence: long, funnel, lead, events: [], start }).at(-1)).toMatchObject({ kind: 'stop', at: at('2026-05-31T08:00:00Z') });
  });

  it('every send lands inside the window in the lead zone, across a DST change', () => {
    const seq = makeSequence({ steps: Array.from({ length: 8 }, (_, i) => [{ id: `e${i}`, type: 'email', template: 't' }, { id: `w${i}`, type: 'wait', for: '2d7h' }]).flat() });
    const t = simulate({ sequence: seq, funnel, lead: { ...lead, timeZone: 'America/New_York' }, events: [], start: at('2026-03-02T20:00:00Z') });
    const sends = t.filter((e) => e.type === 'send');
    expect(sends).toHaveLength(8);
    for (const s of sends) expect(isInWindow(s.at, { ...window, days: [...window.days] as never }, 'America/New_York')).toBe(true);
  });

  it('formats local times with the zone the lead sees', () => {
    expect(formatLocal(at('2026-01-15T14:00:00Z'), 'America/New_York')).toBe('Thu 2026-01-15 09:00 EST');
    expect(formatLocal(at('2026-07-15T13:00:00Z'), 'America/New_York')).toBe('Wed 2026-07-15 09:00 EDT');
  });
});
