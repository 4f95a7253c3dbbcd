import { describe, expect, it } from 'vitest';
import { capUntil, decide, initialEnrollment, needsReplan, type Command, type EnrollmentState, type Facts } from '../../src/engine/decide.js';
import { isInWindow, localTime } from '../../src/engine/time.js';
import { active, at, makeFacts, makeSequence } from '../fixtures/simulate/engine.js';

const WAKE = { type: 'wake' } as const;
const types = (cs: Command[]) => cs.map((c) => c.type);
const sends = (cs: Command[]) => cs.flatMap((c) => (c.type === 'send' ? [c.step.id] : []));
const only = <T extends Command['type']>(cs: Command[], type: T) => {
  const found = cs.filter((c): c is Extract<Command, { type: T }> => c.type === type);
  expect(found).toHaveLength(1);
  return found[0]!;
};

const drip = makeSequence({
  steps: [
    { id: 'intro', type: 'email', template: 't' },
    { id: 'pause', type: 'wait', for: '3d' },
    { id: 'follow-up', type: 'email', template: 't' },
  ],
});

describe('email → wait → email', () => {
  it('sends the first email, starts the wait, then sends the next one when the wait is due', () => {
    const t0 = at('2026-01-12T15:00:00Z');
    const first = decide(drip, initialEnrollment(drip, t0), WAKE, makeFacts(), t0);
    expect(sends(first.commands)).toEqual(['intro']);
    expect(only(first.commands, 'wakeAt').at).toEqual(at('2026-01-15T15:00:00Z'));
    expect(first.enrollment).toMatchObject({ state: 'active', cursor: 'pause', nextDueAt: at('2026-01-15T15:00:00Z'), progress: { sent: ['intro'], waiting: 'pause' } });

    // Woken early (a stray job): nothing moves, the due time stays.
    const early = decide(drip, first.enrollment, WAKE, makeFacts(), at('2026-01-14T00:00:00Z'));
    expect(sends(early.commands)).toEqual([]);
    expect(early.enrollment.nextDueAt).toEqual(at('2026-01-15T15:00:00Z'));

    const second = decide(drip, first.enrollment, WAKE, makeFacts(), at('2026-01-15T15:00:00Z'));
    expect(sends(second.commands)).toEqual(['follow-up']);
    expect(second.enrollment).toMatchObject({ state: 'completed', exitReason: 'completed', cursor: null, nextDueAt: null });
    expect(second.commands.at(-1)).toEqual({ type: 'exit', reason: 'completed' });
  });

  it('does not mutate the enrollment it was given', () => {
    const t0 = at('2026-01-12T15:00:00Z');
    const e = initialEnrollment(drip, t0);
    const copy = structuredClone(e);
    decide(drip, e, WAKE, makeFacts(), t0);
    expect(e).toEqual(copy);
  });

  it('sends at most one email per decision and asks to be woken at once for the next', () => {
    const seq = makeSequence({ steps: [{ id: 'a', type: 'email', template: 't' }, { id: 'b', type: 'email', template: 't' }] });
    const t0 = at('2026-01-12T15:00:00Z');
    const d = decide(seq, initialEnrollment(seq, t0), WAKE, makeFacts(), t0);
    expect(sends(d.commands)).toEqual(['a']);
    expect(only(d.commands, 'wakeAt')).toMatchObject({ at: t0, why: 'next step' });
    expect(d.enrollment.cursor).toBe('b');
  });

  it('does nothing for an enrollment that has ended', () => {
    const ended: EnrollmentState = { ...active('intro'), state: 'exited', exitReason: 'replied' };
    const d = decide(drip, ended, WAKE, makeFacts(), at('2026-01-12T15:00:00Z'));
    expect(d.commands).toEqual([]);
    expect(d.enrollment).toBe(ended);
  });
});

describe('waits', () => {
  const waitOf = (wait: Record<string, unknown>) =>
    makeSequence({ steps: [{ id: 'w', type: 'wait', ...wait }, { id: 'after', type: 'email', template: 't' }] });

  it('by duration', () => {
    const t0 = at('2026-01-12T15:00:00Z');
    const d = decide(waitOf({ for: '1d12h' }), active('w'), WAKE, makeFacts(), t0);
    expect(only(d.commands, 'wakeAt')).toMatchObject({ at: at('2026-01-14T03:00:00Z'), why: 'wait w' });
  });

  it('by business days, skipping the weekend in the lead zone', () => {
    const friday = at('2026-01-16T15:00:00Z'); // 10:00 in New York
    const d = decide(waitOf({ businessDays: 2 }), active('w'), WAKE, makeFacts({ timeZone: 'America/New_York' }), friday);
    expect(only(d.commands, 'wakeAt').at).toEqual(at('2026-01-20T15:00:00Z')); // Tuesday 10:00
    // Friday 19:00 in Los Angeles is Saturday in UTC; still Friday for the lead, so one business day is Monday.
    const d2 = decide(waitOf({ businessDays: 1 }), active('w'), WAKE, makeFacts({ timeZone: 'America/Los_Angeles' }), at('2026-01-17T03:00:00Z'));
    expect(only(d2.commands, 'wakeAt').at).toEqual(at('2026-01-20T03:00:00Z'));
  });

  it('until a window, in the lead zone: the next opening, or a minute later when already inside', () => {
    const seq = waitOf({ until: { days: ['tue', 'thu'], from: '10:00', to: '11:00' } });
    const berlin = makeFacts({ timeZone: 'Europe/Berlin' });
    // Monday 12:00 Berlin → Tuesday 10:00 Berlin.
    expect(only(decide(seq, active('w'), WAKE, berlin, at('2026-01-12T11:00:00Z')).commands, 'wakeAt').at).toEqual(at('2026-01-13T09:00:00Z'));
    // Inside the window already (Tue 10:30): a minute later, still inside.
    expect(only(decide(seq, active('w'), WAKE, berlin, at('2026-01-13T09:30:00Z')).commands, 'wakeAt').at).toEqual(at('2026-01-13T09:31:00Z'));
    // In its last minute (Tue 10:59): the next opening, Thursday.
    expect(only(decide(seq, active('w'), WAKE, berlin, at('2026-01-13T09:59:00Z')).commands, 'wakeAt').at).toEqual(at('2026-01-15T09:00:00Z'));
  });

  it('moves on once due, at the due time', () => {
    const seq = waitOf({ for: '2h' });
    const started = decide(seq, active('w'), WAKE, makeFacts(), at('2026-01-12T15:00:00Z'));
    const due = decide(seq, started.enrollment, WAKE, makeFacts(), at('2026-01-12T17:00:00Z'));
    expect(sends(due.commands)).toEqual(['after']);
    expect(due.enrollment.progress.waiting).toBeUndefined();
  });
});

describe('send windows', () => {
  const window = { days: ['mon', 'tue', 'wed', 'thu', 'fri'] as const, from: '09:00', to: '17:00' };
  const seq = makeSequence({ steps: [{ id: 'hello', type: 'email', template: 't' }] });
  const factsIn = (timeZone: string) => makeFacts({ timeZone, window: { ...window, days: [...window.days] } });

  it('sends inside the window', () => {
    const d = decide(seq, active('hello'), WAKE, factsIn('America/New_York'), at('2026-01-14T15:00:00Z'));
    expect(sends(d.commands)).toEqual(['hello']);
  });

  it.each([
    ['America/New_York', '2026-03-06T23:30:00Z', '2026-03-09T13:00:00Z'], // Fri 18:30 EST → Mon 09:00 EDT
    ['America/New_York', '2026-10-31T14:00:00Z', '2026-11-02T14:00:00Z'], // Sat 10:00 EDT → Mon 09:00 EST
    ['Europe/Berlin', '2026-03-28T09:00:00Z', '2026-03-30T07:00:00Z'], // Sat 10:00 CET → Mon 09:00 CEST
    ['Europe/Berlin', '2026-10-23T17:00:00Z', '2026-10-26T08:00:00Z'], // Fri 19:00 CEST → Mon 09:00 CET
  ])('a wake outside the window in %s defers to the next opening across DST (%s)', (tz, now, expected) => {
    const d = decide(seq, active('hello'), WAKE, factsIn(tz), at(now));
    expect(sends(d.commands)).toEqual([]);
    const defer = only(d.commands, 'defer');
    expect(defer).toMatchObject({ step: 'hello', why: 'window', until: at(expected) });
    expect(d.enrollment).toMatchObject({ cursor: 'hello', nextDueAt: at(expected) });
    expect(localTime(defer.until, tz)).toMatchObject({ hour: 9, minute: 0, weekday: 'mon' });
    // Woken at the deferral time, it sends.
    expect(sends(decide(seq, d.enrollment, WAKE, factsIn(tz), defer.until).commands)).toEqual(['hello']);
  });

  it('sends any time without a window', () => {
    expect(sends(decide(seq, active('hello'), WAKE, makeFacts({ window: null }), at('2026-01-18T03:00:00Z')).commands)).toEqual(['hello']);
  });
});

describe('frequency caps', () => {
  const seq = makeSequence({ steps: [{ id: 'hello', type: 'email', template: 't' }] });
  const now = at('2026-01-14T15:00:00Z');
  const caps = { lead: { max: 2, per: '7d' }, account: { max: 3, per: '1d' } };

  it('defers, never drops, until the oldest counted send leaves the period', () => {
    const lead = [at('2026-01-09T10:00:00Z'), at('2026-01-13T12:00:00Z'), at('2026-01-01T00:00:00Z')];
    const d = decide(seq, active('hello'), WAKE, makeFacts({ caps, recentSends: { lead, account: lead } }), now);
    expect(sends(d.commands)).toEqual([]);
    expect(only(d.commands, 'defer')).toMatchObject({ step: 'hello', why: 'cap_lead', until: at('2026-01-16T10:00:00Z') });
    expect(d.enrollment.state).toBe('active');
    expect(d.enrollment.cursor).toBe('hello');
    expect(d.enrollment.progress.sent).toEqual([]);
    // At that moment only one send is left in the period: it goes.
    const later = decide(seq, d.enrollment, WAKE, makeFacts({ caps, recentSends: { lead, account: lead } }), at('2026-01-16T10:00:00Z'));
    expect(sends(later.commands)).toEqual(['hello']);
  });

  it('defers on the account cap when colleagues used it up', () => {
    const account = [at('2026-01-14T01:00:00Z'), at('2026-01-14T02:00:00Z'), at('2026-01-14T03:00:00Z')];
    const d = decide(seq, active('hello'), WAKE, makeFacts({ caps, recentSends: { lead: [], account } }), now);
    expect(only(d.commands, 'defer')).toMatchObject({ why: 'cap_account', until: at('2026-01-15T01:00:00Z') });
  });

  it('capUntil waits for as many sends to age out as needed', () => {
    const cap = { max: 2, per: '1d' };
    const s = [at('2026-01-14T10:00:00Z'), at('2026-01-14T11:00:00Z'), at('2026-01-14T12:00:00Z')];
    expect(capUntil(s, cap, at('2026-01-14T13:00:00Z'))).toEqual(at('2026-01-15T11:00:00Z'));
    expect(capUntil(s.slice(0, 1), cap, at('2026-01-14T13:00:00Z'))).toBeNull();
    expect(capUntil(s, undefined, at('2026-01-14T13:00:00Z'))).toBeNull();
    expect(capUntil(s, cap, at('2026-01-15T11:00:00Z'))).toBeNull();
  });

  it('a cap that ends outside the window defers the step straight to the window\'s next opening after it, for the cap, then it is sent', () => {
    const window = { days: ['mon', 'tue', 'wed', 'thu', 'fri'] as ('mon' | 'tue' | 'wed' | 'thu' | 'fri')[], from: '09:00', to: '17:00' };
    const lead = [at('2026-01-09T22:30:00Z'), at('2026-01-13T12:00:00Z')]; // ages out Fri 16 Jan 22:30 UTC = 17:30 NY
    const facts = makeFacts({ timeZone: 'America/New_York', window, caps, recentSends: { lead, account: lead } });
    const d1 = decide(seq, active('hello'), WAKE, facts, now);
    // Not to Friday 17:30 (the cap's end, after the window closed) and then again: Monday 09:00 in New
    // York. The cap is why: without it the step would have gone this week.
    expect(only(d1.commands, 'defer')).toMatchObject({ why: 'cap_lead', until: at('2026-01-19T14:00:00Z') });
    const d2 = decide(seq, d1.enrollment, WAKE, facts, at('2026-01-19T14:00:00Z'));
    expect(sends(d2.commands)).toEqual(['hello']);
    expect(isInWindow(at('2026-01-19T14:00:00Z'), window, 'America/New_York')).toBe(true);
  });

  it('a window that opens inside a capped period defers the step to the cap\'s end, and says so', () => {
    const window = { days: ['mon', 'tue', 'wed', 'thu', 'fri'] as ('mon' | 'tue' | 'wed' | 'thu' | 'fri')[], from: '09:00', to: '17:00' };
    // Two sends last Monday at 12:00 New York: the cap lets the next go on Monday 19 January at 12:00 there.
    const lead = [at('2026-01-12T16:59:00Z'), at('2026-01-12T17:00:00Z')];
    const sunday = at('2026-01-18T15:00:00Z');
    const d = decide(seq, active('hello'), WAKE, makeFacts({ timeZone: 'America/New_York', window, caps, recentSends: { lead, account: lead } }), sunday);
    expect(only(d.commands, 'defer')).toMatchObject({ why: 'cap_lead', until: at('2026-01-19T16:59:00Z') });
  });

  it('a Sunday\'s step for a lead at the cap until the next weekend goes the Monday after, and the cap is the reason given', () => {
    const window = { days: ['mon', 'tue', 'wed', 'thu', 'fri'] as ('mon' | 'tue' | 'wed' | 'thu' | 'fri')[], from: '09:00', to: '17:00' };
    // Two sends on Sunday 18 January (one day ahead of the window): the cap ends on Sunday the 25th.
    const lead = [at('2026-01-18T14:00:00Z'), at('2026-01-18T15:00:00Z')];
    const d = decide(seq, active('hello'), WAKE, makeFacts({ timeZone: 'America/New_York', window, caps, recentSends: { lead, account: [] } }), at('2026-01-18T16:00:00Z'));
    expect(only(d.commands, 'defer')).toMatchObject({ why: 'cap_lead', until: at('2026-01-26T14:00:00Z') });
  });
});

describe('release and replan of a deferred step', () => {
  const window = { days: ['mon', 'tue', 'wed', 'thu', 'fri'] as const, from: '09:00', to: '17:00' };
  const seq = makeSequence({ steps: [{ id: 'hello', type: 'email', template: 't' }, { id: 'later', type: 'wait', for: '2d' }, { id: 'bye', type: 'email', template: 't' }] });
  const facts = (over: Parameters<typeof makeFacts>[0] = {}) => makeFacts({ timeZone: 'America/New_York', window: { ...window, days: [...window.days] }, ...over });
  const saturday = at('2026-01-17T15:00:00Z');

  it('a deferral says which step waits and why', () => {
    const d = decide(seq, active('hello'), WAKE, facts(), saturday);
    expect(d.enrollment.progress.deferred).toEqual({ step: 'hello', why: 'window' });
  });

  it('an operator releases a window-deferred step: it goes out at once, and the rest keeps to the window', () => {
    const deferred = decide(seq, active('hello'), WAKE, facts(), saturday).enrollment;
    const released = decide(seq, deferred, { type: 'release' }, facts(), saturday);
    expect(sends(released.commands)).toEqual(['hello']);
    expect(released.enrollment.progress.deferred).toBeUndefined();
    expect(released.enrollment.progress.released).toBeUndefined();
    expect(released.enrollment).toMatchObject({ cursor: 'later', progress: { waiting: 'later' } });
  });

  it('releases past a cap and a return date too, but only the step named, and only a deferred one', () => {
    const capped = decide(seq, active('hello'), WAKE, facts({ window: null, caps: { lead: { max: 1, per: '7d' } }, recentSends: { lead: [at('2026-01-16T12:00:00Z')], account: [] } }), saturday).enrollment;
    expect(capped.progress.deferred).toEqual({ step: 'hello', why: 'cap_lead' });
    expect(sends(decide(seq, capped, { type: 'release', step: 'bye' }, facts(), saturday).commands)).toEqual([]);
    expect(sends(decide(seq, capped, { type: 'release', step: 'hello' }, facts(), saturday).commands)).toEqual(['hello']);
    // A wait is not a deferral: nothing to release.
    const waiting = decide(seq, capped, { type: 'release' }, facts(), saturday).enrollment;
    expect(decide(seq, waiting, { type: 'release' }, facts(), saturday).commands).toEqual([]);
  });

  it('never releases past a value-first gate', () => {
    const gated = makeSequence({ steps: [{ id: 'pitch', type: 'email', template: 't', kind: 'pitch', gate: { valuePieces: 2, timeout: '14d', onTimeout: 'skip' } }] });
    const held = decide(gated, active('pitch'), WAKE, facts({ engagement: { valuePieces: 0 } }), saturday);
    expect(types(held.commands)).toEqual(['hold']);
    expect(decide(gated, held.enrollment, { type: 'release' }, facts({ engagement: { valuePieces: 0 } }), saturday).commands).toEqual([]);
  });

  it('a wake after the window or the zone changed plans the deferred step again', () => {
    const deferred = decide(seq, active('hello'), WAKE, facts(), saturday).enrollment;
    expect(deferred.nextDueAt).toEqual(at('2026-01-19T14:00:00Z'));
    // The window now includes weekends: it goes out now.
    const weekends = decide(seq, deferred, WAKE, facts({ window: { days: ['sat', 'sun', 'mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' } }), saturday);
    expect(sends(weekends.commands)).toEqual(['hello']);
    // The lead is in Tokyo: Monday 09:00 there, which comes sooner.
    const tokyo = decide(seq, deferred, WAKE, facts({ timeZone: 'Asia/Tokyo' }), saturday);
    expect(only(tokyo.commands, 'defer').until).toEqual(at('2026-01-19T00:00:00Z'));
    // needsReplan says when such a wake is owed, and only then.
    expect(needsReplan(deferred, facts(), saturday)).toBe(false);
    expect(needsReplan(deferred, facts({ timeZone: 'Asia/Tokyo' }), saturday)).toBe(true);
    expect(needsReplan(deferred, facts({ window: null }), saturday)).toBe(true);
    expect(needsReplan(decide(seq, active('hello'), WAKE, facts({ window: null, caps: { lead: { max: 1, per: '7d' } }, recentSends: { lead: [saturday], account: [] } }), saturday).enrollment, facts({ timeZone: 'Asia/Tokyo' }), saturday)).toBe(false);
  });
});

describe('value-first gate', () => {
  const gated = (onTimeout: 'skip' | 'send') =>
    makeSequence({
      steps: [
        { id: 'pitch', type: 'email', template: 't', kind: 'pitch', gate: { valuePieces: 2, timeout: '14d', onTimeout } },
        { id: 'after', type: 'email', template: 't' },
      ],
    });
  const t0 = at('2026-01-12T15:00:00Z');

  it('holds a pitch until the lead engaged with enough value pieces, then sends it', () => {
    const seq = gated('skip');
    const held = decide(seq, active('pitch'), WAKE, makeFacts({ engagement: { valuePieces: 1 } }), t0);
    const hold = only(held.commands, 'hold');
    expect(hold).toMatchObject({ step: 'pitch', until: at('2026-01-26T15:00:00Z') });
    expect(hold.reason).toContain('1 of 2');
    expect(sends(held.commands)).toEqual([]);
    expect(held.enrollment.progress.gate).toEqual({ step: 'pitch', since: t0.toISOString() });

    // An engagement that does not reach the bar keeps the original timeout.
    const still = decide(seq, held.enrollment, { type: 'engaged' }, makeFacts({ engagement: { valuePieces: 1 } }), at('2026-01-20T00:00:00Z'));
    expect(only(still.commands, 'hold').until).toEqual(at('2026-01-26T15:00:00Z'));

    const opened = decide(seq, held.enrollment, { type: 'engaged' }, makeFacts({ engagement: { valuePieces: 2 } }), at('2026-01-20T00:00:00Z'));
    expect(sends(opened.commands)).toEqual(['pitch']);
    expect(opened.enrollment.progress.gate).toBeUndefined();
  });

  it('an engaged event does nothing when no gate is held', () => {
    const d = decide(drip, { ...active('pause'), nextDueAt: at('2026-01-15T15:00:00Z'), progress: { sent: ['intro'], waiting: 'pause' } }, { type: 'engaged' }, makeFacts(), t0);
    expect(d.commands).toEqual([]);
    expect(d.enrollment.nextDueAt).toEqual(at('2026-01-15T15:00:00Z'));
  });

  it('on timeout with onTimeout: skip, skips the pitch and goes on', () => {
    const seq = gated('skip');
    const held = decide(seq, active('pitch'), WAKE, makeFacts(), t0);
    const d = decide(seq, held.enrollment, WAKE, makeFacts(), at('2026-01-26T15:00:00Z'));
    expect(only(d.commands, 'skip').step).toBe('pitch');
    expect(sends(d.commands)).toEqual(['after']);
    expect(d.enrollment.progress.sent).not.toContain('pitch');
  });

  it('on timeout with onTimeout: send, sends the pitch anyway', () => {
    const seq = gated('send');
    const held = decide(seq, active('pitch'), WAKE, makeFacts(), t0);
    const d = decide(seq, held.enrollment, WAKE, makeFacts(), at('2026-01-26T15:00:00Z'));
    expect(sends(d.commands)).toEqual(['pitch']);
    expect(types(d.commands)).not.toContain('skip');
  });

  it('on timeout with onTimeout: send, a window deferral does not restart the gate', () => {
    const seq = gated('send');
    const window = { days: ['mon', 'tue', 'wed', 'thu', 'fri'] as ('mon' | 'tue' | 'wed' | 'thu' | 'fri')[], from: '09:00', to: '17:00' };
    const facts = makeFacts({ window, timeZone: 'UTC' });
    const start = at('2026-01-12T16:30:00Z'); // Monday 16:30: the timeout lands at 16:30 two weeks later, inside
    const held = decide(seq, active('pitch'), WAKE, facts, start);
    expect(only(held.commands, 'hold').until).toEqual(at('2026-01-26T16:30:00Z'));
    // The timeout job runs a little late, after the window closed: defer to the morning…
    const late = decide(seq, held.enrollment, WAKE, facts, at('2026-01-26T17:10:00Z'));
    expect(only(late.commands, 'defer')).toMatchObject({ why: 'window', until: at('2026-01-27T09:00:00Z') });
    // …and then send, rather than hold the pitch for another 14 days.
    const next = decide(seq, late.enrollment, WAKE, facts, at('2026-01-27T09:00:00Z'));
    expect(types(next.commands)).not.toContain('hold');
    expect(sends(next.commands)).toEqual(['pitch']);
  });

  it('a met gate still respects the window', () => {
    const seq = gated('skip');
    const window = { days: ['mon'] as 'mon'[], from: '09:00', to: '10:00' };
    const d = decide(seq, active('pitch'), WAKE, makeFacts({ window, engagement: { valuePieces: 3 } }), at('2026-01-13T12:00:00Z'));
    expect(only(d.commands, 'defer')).toMatchObject({ why: 'window', until: at('2026-01-19T09:00:00Z') });
  });
});

describe('branches and goals', () => {
  const branching = (when: unknown) =>
    makeSequence({
      steps: [
        { id: 'note', type: 'email', template: 't' },
        { id: 'fork', type: 'branch', when, then: 'hot' },
        { id: 'cold', type: 'email', template: 't' },
        { id: 'hot', type: 'email', template: 't' },
      ],
    });
  const sentNote = () => active('fork', { progress: { sent: ['note'] } });
  const t = at('2026-01-12T15:00:00Z');
  const cases: [string, unknown, Partial<Facts['engagement']>, Facts['profile'] | undefined][] = [
    ['opened', { opened: 'note' }, { openedSteps: ['note'] }, undefined],
    ['clicked a step', { clicked: 'note' }, { clickedSteps: ['note'] }, undefined],
    ['clicked a tag', { clicked: { tag: 'pricing' } }, { clickedTags: ['pricing'] }, undefined],
    ['score', { score: { gte: 10 } }, { score: 12 }, undefined],
    ['field', { field: { field: 'account.tier', in: ['enterprise', 'mid'] } }, {}, { lead: {}, account: { tier: 'Enterprise' } }],
  ];

  it.each(cases)('branch on %s: then when met, else (the next step) when not', (_name, when, engagement, profile) => {
    const seq = branching(when);
    const met = decide(seq, sentNote(), WAKE, makeFacts({ engagement, ...(profile ? { profile } : {}) }), t);
    expect(only(met.commands, 'branch')).toMatchObject({ step: 'fork', to: 'hot' });
    expect(sends(met.commands)).toEqual(['hot']);
    const notMet = decide(seq, sentNote(), WAKE, makeFacts(), t);
    expect(only(notMet.commands, 'branch')).toMatchObject({ step: 'fork', to: 'cold' });
    expect(sends(notMet.commands)).toEqual(['cold']);
  });

  it('says why it branched', () => {
    const d = decide(branching({ opened: 'note' }), sentNote(), WAKE, makeFacts({ engagement: { openedSteps: ['note'] } }), t);
    expect(only(d.commands, 'branch').because).toEqual(['opened note']);
  });

  it('a branch to the end completes the enrollment', () => {
    const seq = makeSequence({ steps: [{ id: 'a', type: 'email', template: 't' }, { id: 'fork', type: 'branch', when: { replied: true }, then: 'b' }, { id: 'b', type: 'email', template: 't' }] });
    const d = decide(seq, active('fork', { progress: { sent: ['a'] } }), WAKE, makeFacts(), t);
    expect(only(d.commands, 'branch').to).toBe('b');
    const seq2 = makeSequence({ steps: [{ id: 'a', type: 'email', template: 't' }, { id: 'x', type: 'email', template: 't' }, { id: 'fork', type: 'branch', when: { replied: true }, then: 'b' }, { id: 'b', type: 'email', template: 't' }] });
    const end = decide(seq2, active('b', { progress: { sent: ['a', 'x', 'b'] } }), WAKE, makeFacts(), t);
    expect(end.enrollment.state).toBe('completed');
  });

  it('a goal that is met exits as converted, with the evidence', () => {
    const seq = makeSequence({ steps: [{ id: 'a', type: 'email', template: 't' }, { id: 'won', type: 'goal', when: { clicked: { tag: 'demo' } } }, { id: 'b', type: 'email', template: 't' }] });
    const met = decide(seq, active('won', { progress: { sent: ['a'] } }), WAKE, makeFacts({ engagement: { clickedTags: ['demo'] } }), t);
    expect(met.enrollment).toMatchObject({ state: 'exited', exitReason: 'converted', nextDueAt: null });
    expect(only(met.commands, 'exit')).toEqual({ type: 'exit', reason: 'converted', because: 'clicked a link tagged demo' });
    expect(sends(met.commands)).toEqual([]);
    const notMet = decide(seq, active('won', { progress: { sent: ['a'] } }), WAKE, makeFacts(), t);
    expect(sends(notMet.commands)).toEqual(['b']);
  });
});

describe('events', () => {
  const t = at('2026-01-13T15:00:00Z');
  const waiting = () => active('pause', { nextDueAt: at('2026-01-15T15:00:00Z'), progress: { sent: ['intro'], waiting: 'pause' } });

  it.each(['bounced', 'unsubscribed'] as const)('%s exits whatever the sequence says', (type) => {
    const seq = makeSequence({ mode: 'segmented', exitOn: [], steps: drip.steps });
    const d = decide(seq, waiting(), { type }, makeFacts(), t);
    expect(d.enrollment).toMatchObject({ state: 'exited', exitReason: type, nextDueAt: null });
    expect(d.commands).toEqual([{ type: 'exit', reason: type }]);
  });

  it('a manual exit', () => {
    expect(decide(drip, waiting(), { type: 'exit', reason: 'manual' }, makeFacts(), t).enrollment.exitReason).toBe('manual');
  });

  it('a reply always ends a one-to-one sequence; a segmented one only when exitOn says so', () => {
    expect(decide(drip, waiting(), { type: 'replied' }, makeFacts(), t).enrollment).toMatchObject({ state: 'exited', exitReason: 'replied' });
    const oneToOneNoExit = makeSequence({ mode: 'one_to_one', exitOn: ['bounced'], steps: drip.steps });
    expect(decide(oneToOneNoExit, waiting(), { type: 'replied' }, makeFacts(), t).enrollment.state).toBe('exited');
    const keepsGoing = makeSequence({ mode: 'segmented', exitOn: ['unsubscribed'], steps: drip.steps });
    const d = decide(keepsGoing, waiting(), { type: 'replied' }, makeFacts(), t);
    expect(d.enrollment.state).toBe('active');
    expect(d.commands).toEqual([]);
    const segmentedDefault = makeSequence({ mode: 'segmented', steps: drip.steps });
    expect(decide(segmentedDefault, waiting(), { type: 'replied' }, makeFacts(), t).enrollment.exitReason).toBe('replied');
  });

  it('advancing to another stage exits; to the same stage, or with exitOn without it, does not', () => {
    const d = decide(drip, waiting(), { type: 'advanced', toStage: 'desire' }, makeFacts(), t);
    expect(d.enrollment).toMatchObject({ state: 'exited', exitReason: 'advanced' });
    expect(only(d.commands, 'exit').because).toBe('lead moved to desire');
    expect(decide(drip, waiting(), { type: 'advanced', toStage: 'interest' }, makeFacts(), t).enrollment.state).toBe('active');
    const stays = makeSequence({ exitOn: ['replied'], steps: drip.steps });
    expect(decide(stays, waiting(), { type: 'advanced', toStage: 'desire' }, makeFacts(), t).enrollment.state).toBe('active');
  });

  it('out-of-office postpones: nothing is sent before the return date, then it goes on', () => {
    const seq = makeSequence({ steps: [{ id: 'a', type: 'email', template: 't' }, { id: 'b', type: 'email', template: 't' }] });
    const back = at('2026-01-20T08:00:00Z');
    const p = decide(seq, active('a', { nextDueAt: t }), { type: 'postpone', until: back, why: 'out of office' }, makeFacts(), t);
    expect(p.commands).toEqual([{ type: 'wakeAt', at: back, why: 'out of office' }]);
    expect(p.enrollment).toMatchObject({ nextDueAt: back, progress: { notBefore: back.toISOString() } });
    const tooSoon = decide(seq, p.enrollment, WAKE, makeFacts(), at('2026-01-16T08:00:00Z'));
    expect(sends(tooSoon.commands)).toEqual([]);
    expect(only(tooSoon.commands, 'defer')).toMatchObject({ why: 'out_of_office', until: back });
    expect(sends(decide(seq, p.enrollment, WAKE, makeFacts(), back).commands)).toEqual(['a']);
  });

  it('a postponement in the past, or earlier than the next due time, changes nothing that is due', () => {
    const p = decide(drip, waiting(), { type: 'postpone', until: at('2026-01-10T00:00:00Z'), why: 'out of office' }, makeFacts(), t);
    expect(p.commands).toEqual([]);
    const p2 = decide(drip, waiting(), { type: 'postpone', until: at('2026-01-14T00:00:00Z'), why: 'out of office' }, makeFacts(), t);
    expect(p2.enrollment.nextDueAt).toEqual(at('2026-01-15T15:00:00Z'));
    expect(only(p2.commands, 'wakeAt').at).toEqual(at('2026-01-15T15:00:00Z'));
  });
});

describe('live edits', () => {
  const v1 = makeSequence({
    steps: [
      { id: 'a', type: 'email', template: 't' },
      { id: 'w1', type: 'wait', for: '2d' },
      { id: 'b', type: 'email', template: 't' },
      { id: 'c', type: 'email', template: 't' },
      { id: 'd', type: 'email', template: 't' },
    ],
  }, 'test-seq', 'v1');
  const prior = v1.steps.map((s) => s.id);
  const t = at('2026-01-12T15:00:00Z');

  it('a removed step is skipped to the next step of the prior version that still exists', () => {
    const v2 = makeSequence({ steps: [{ id: 'a', type: 'email', template: 't' }, { id: 'x', type: 'email', template: 't' }, { id: 'd', type: 'email', template: 't' }] }, 'test-seq', 'v2');
    // The enrollment stood at b; b and c are gone; x is new but lies before d in the new version.
    const d = decide(v2, active('b', { progress: { sent: ['a'] } }), WAKE, makeFacts({ priorStepIds: prior }), t);
    expect(sends(d.commands)).toEqual(['d']);
  });

  it('with nothing left of the prior version, the enrollment completes', () => {
    const v2 = makeSequence({ steps: [{ id: 'a', type: 'email', template: 't' }, { id: 'b', type: 'email', template: 't' }] }, 'test-seq', 'v2');
    const d = decide(v2, active('c', { progress: { sent: ['a', 'b'] } }), WAKE, makeFacts({ priorStepIds: prior }), t);
    expect(sends(d.commands)).toEqual([]);
    expect(d.enrollment.state).toBe('completed');
  });

  it('a step already sent is never sent again, even if the edit moves it after the cursor', () => {
    const v2 = makeSequence({ steps: [{ id: 'b', type: 'email', template: 't' }, { id: 'a', type: 'email', template: 't' }, { id: 'e', type: 'email', template: 't' }] }, 'test-seq', 'v2');
    const d = decide(v2, active('b', { progress: { sent: ['a'] } }), WAKE, makeFacts({ priorStepIds: prior }), t);
    expect(sends(d.commands)).toEqual(['b']);
    const d2 = decide(v2, d.enrollment, WAKE, makeFacts({ priorStepIds: prior }), t);
    expect(sends(d2.commands)).toEqual(['e']);
  });

  it('a wait already started keeps its due time when its duration is edited', () => {
    const started = decide(v1, active('w1', { progress: { sent: ['a'] } }), WAKE, makeFacts(), t);
    expect(started.enrollment.nextDueAt).toEqual(at('2026-01-14T15:00:00Z'));
    const v2 = makeSequence({ steps: v1.steps.map((s) => (s.id === 'w1' ? { id: 'w1', type: 'wait', for: '10d' } : s)) }, 'test-seq', 'v2');
    const early = decide(v2, started.enrollment, WAKE, makeFacts({ priorStepIds: prior }), at('2026-01-13T15:00:00Z'));
    expect(only(early.commands, 'wakeAt').at).toEqual(at('2026-01-14T15:00:00Z'));
    const due = decide(v2, started.enrollment, WAKE, makeFacts({ priorStepIds: prior }), at('2026-01-14T15:00:00Z'));
    expect(sends(due.commands)).toEqual(['b']);
  });
});

describe('out-of-office, twice', () => {
  it('a second, shorter postponement does not shorten the first (the order of auto-replies does not matter)', () => {
    const seq = makeSequence({ steps: [{ id: 'a', type: 'email', template: 't' }] });
    const t = at('2026-01-13T15:00:00Z');
    const long = { type: 'postpone', until: at('2026-01-25T00:00:00Z'), why: 'out of office' } as const;
    const short = { type: 'postpone', until: at('2026-01-14T00:00:00Z'), why: 'out of office' } as const;
    const ab = decide(seq, decide(seq, active('a', { nextDueAt: t }), long, makeFacts(), t).enrollment, short, makeFacts(), t).enrollment;
    const ba = decide(seq, decide(seq, active('a', { nextDueAt: t }), short, makeFacts(), t).enrollment, long, makeFacts(), t).enrollment;
    expect(ab.progress.notBefore).toBe('2026-01-25T00:00:00.000Z');
    expect(ba.progress.notBefore).toBe('2026-01-25T00:00:00.000Z');
    const d = decide(seq, ab, { type: 'wake' }, makeFacts(), at('2026-01-20T00:00:00Z'));
    expect(d.commands).toEqual([{ type: 'defer', step: 'a', until: at('2026-01-25T00:00:00Z'), why: 'out_of_office' }]);
  });
});
