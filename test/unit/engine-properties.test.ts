// Invariants of decide(), checked on random sequences, clocks and event streams, driving the engine the
// way the simulator and the workers do: wake it when it asked to be woken, hand it events as they come.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/config/duration.js';
import type { Cap, Condition, Sequence, Window } from '../../src/config/schema.js';
import { decide, initialEnrollment, type EngineEvent, type EnrollmentState, type Facts } from '../../src/engine/decide.js';
import { simulate, type SimEvent } from '../../src/engine/simulate.js';
import { isInWindow } from '../../src/engine/time.js';
import { makeFunnel, makeSequence } from '../fixtures/simulate/engine.js';

const ZONES = ['UTC', 'America/New_York', 'Europe/Berlin', 'Asia/Tokyo', 'Australia/Sydney'];
const WINDOWS: (Window | null)[] = [
  null,
  { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' },
  { days: ['mon', 'wed'], from: '10:00', to: '12:00' },
  { days: ['sat', 'sun'], from: '01:30', to: '02:45' }, // around the hours clocks change
  { days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '08:00', to: '20:00' },
];
const DAY = 86_400_000;

// ---------- random sequences: email / wait / branch / goal, branches forward only ----------

type StepDraft =
  | { t: 'email'; pitch: boolean; gate: { valuePieces: number; timeout: string; onTimeout: 'skip' | 'send' } | null }
  | { t: 'wait'; kind: 'for' | 'businessDays' | 'until'; n: number; window: number }
  | { t: 'branch'; cond: number; arg: number; then: number; else: number | null }
  | { t: 'goal'; cond: number; arg: number };

const stepDraft: fc.Arbitrary<StepDraft> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('email' as const), pitch: fc.boolean(), gate: fc.option(fc.record({ valuePieces: fc.integer({ min: 1, max: 3 }), timeout: fc.constantFrom('6h', '1d', '3d', '10d'), onTimeout: fc.constantFrom('skip' as const, 'send' as const) }), { nil: null }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('wait' as const), kind: fc.constantFrom('for' as const, 'businessDays' as const, 'until' as const), n: fc.integer({ min: 1, max: 5 }), window: fc.integer({ min: 1, max: WINDOWS.length - 1 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('branch' as const), cond: fc.nat(5), arg: fc.nat(20), then: fc.nat(10), else: fc.option(fc.nat(10), { nil: null }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('goal' as const), cond: fc.nat(5), arg: fc.nat(20) }) },
);

function condition(kind: number, arg: number, emailIds: string[]): Condition {
  const email = emailIds[arg % Math.max(1, emailIds.length)];
  switch (kind) {
    case 0:
      return email ? { opened: email } : { replied: true };
    case 1:
      return email ? { clicked: email } : { replied: false };
    case 2:
      return { score: { gte: arg } };
    case 3:
      return { valuePieces: { gte: arg % 4 } };
    case 4:
      return { clicked: { tag: `tag-${arg % 3}` } };
    default:
      return { not: { replied: true } };
  }
}

function buildSequence(drafts: StepDraft[]): Sequence {
  const ids = drafts.map((_, i) => `s${i}`);
  const emailIds = drafts.flatMap((d, i) => (d.t === 'email' ? [ids[i]!] : []));
  const steps = drafts.map((d, i) => {
    const id = ids[i]!;
    const forward = (n: number) => ids[i + 1 + (n % (drafts.length - i - 1))]!;
    switch (d.t) {
      case 'email':
        return { id, type: 'email', template: 't', kind: d.pitch || d.gate ? 'pitch' : 'value', ...(d.gate ? { gate: d.gate } : {}) };
      case 'wait':
        if (d.kind === 'for') return { id, type: 'wait', for: `${d.n * 7}h` };
        if (d.kind === 'businessDays') return { id, type: 'wait', businessDays: d.n };
        return { id, type: 'wait', until: WINDOWS[d.window]! };
      case 'branch':
        // The last step has nowhere forward to go: make it a goal.
        if (i === drafts.length - 1) return { id, type: 'goal', when: condition(d.cond, d.arg, emailIds) };
        return { id, type: 'branch', when: condition(d.cond, d.arg, emailIds), then: forward(d.then), ...(d.else !== null ? { else: forward(d.else) } : {}) };
      case 'goal':
        return { id, type: 'goal', when: condition(d.cond, d.arg, emailIds) };
    }
  });
  return makeSequence({ steps }, 'random');
}

const sequenceArb = fc.array(stepDraft, { minLength: 1, maxLength: 9 }).map(buildSequence);

// ---------- random lead situations and event streams ----------

type Happening =
  | { at: number; kind: 'engaged'; piece: boolean; open: number; tag: number | null }
  | { at: number; kind: 'replied' | 'bounced' | 'unsubscribed' | 'exit' }
  | { at: number; kind: 'advanced'; same: boolean }
  | { at: number; kind: 'postpone'; forMinutes: number }
  | { at: number; kind: 'otherSend'; account: boolean };

const minutes = fc.integer({ min: 0, max: 45 * 24 * 60 });
const happening: fc.Arbitrary<Happening> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ at: minutes, kind: fc.constant('engaged' as const), piece: fc.boolean(), open: fc.nat(8), tag: fc.option(fc.nat(3), { nil: null }) }) },
  { weight: 1, arbitrary: fc.record({ at: minutes, kind: fc.constantFrom('replied' as const, 'bounced' as const, 'unsubscribed' as const, 'exit' as const) }) },
  { weight: 1, arbitrary: fc.record({ at: minutes, kind: fc.constant('advanced' as const), same: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ at: minutes, kind: fc.constant('postpone' as const), forMinutes: fc.integer({ min: -600, max: 14 * 24 * 60 }) }) },
  { weight: 3, arbitrary: fc.record({ at: minutes, kind: fc.constant('otherSend' as const), account: fc.boolean() }) },
);

const capArb: fc.Arbitrary<Cap | undefined> = fc.option(fc.record({ max: fc.integer({ min: 1, max: 3 }), per: fc.constantFrom('12h', '1d', '3d', '7d') }), { nil: undefined });

const scenario = fc.record({
  sequence: sequenceArb,
  mode: fc.constantFrom('one_to_one' as const, 'segmented' as const),
  zone: fc.constantFrom(...ZONES),
  window: fc.nat(WINDOWS.length - 1),
  caps: fc.record({ lead: capArb, account: capArb }),
  // Anywhere in 2026, DST changes included.
  start: fc.integer({ min: Date.UTC(2026, 0, 1), max: Date.UTC(2026, 11, 1) }).map((ms) => new Date(ms - (ms % 60_000))),
  happenings: fc.array(happening, { maxLength: 25 }),
});

type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

interface SendRecord {
  step: string;
  at: Date;
  valuePieces: number;
}

interface Run {
  seq: Sequence;
  facts: (now: Date) => Facts;
  sends: SendRecord[];
  holds: Map<string, Date>;
  allHolds: Map<string, Date[]>;
  leadSends: Date[];
  accountSends: Date[];
  notBefore: Date[];
  endedAt: Date | null;
  violations: string[];
}

/** Drives decide like the simulator: wakes when asked, events when they happen, whichever comes first. */
function drive(s: Scenario): Run {
  const seq: Sequence = { ...s.sequence, mode: s.mode };
  const window = WINDOWS[s.window]!;
  const engagement = { score: 0, valuePieces: 0, replied: false, openedSteps: [] as string[], clickedSteps: [] as string[], clickedTags: [] as string[] };
  const run: Run = {
    seq,
    sends: [],
    holds: new Map(),
    allHolds: new Map(),
    leadSends: [],
    accountSends: [],
    notBefore: [],
    endedAt: null,
    violations: [],
    facts: () => ({
      timeZone: s.zone,
      window,
      caps: { ...(s.caps.lead ? { lead: s.caps.lead } : {}), ...(s.caps.account ? { account: s.caps.account } : {}) },
      recentSends: { lead: [...run.leadSends], account: [...run.accountSends] },
      engagement: structuredClone(engagement),
      profile: { lead: {}, account: {} },
    }),
  };
  const horizon = s.start.getTime() + 120 * DAY;
  const events = [...s.happenings].sort((a, b) => a.at - b.at).map((h) => ({ ...h, time: new Date(s.start.getTime() + h.at * 60_000) }));
  let e: EnrollmentState = initialEnrollment(seq, s.start);

  const feed = (event: EngineEvent, now: Date) => {
    const before = e;
    const facts = run.facts(now);
    const d = decide(seq, e, event, facts, now);
    if (before.state !== 'active' && d.commands.length) run.violations.push(`commands after ${before.state}: ${d.commands.map((c) => c.type).join(',')}`);
    for (const c of d.commands) {
      if (c.type === 'hold' && !run.holds.has(c.step)) run.holds.set(c.step, now);
      if (c.type === 'hold') run.allHolds.set(c.step, [...(run.allHolds.get(c.step) ?? []), now]);
      if (c.type === 'send') {
        run.sends.push({ step: c.step.id, at: now, valuePieces: facts.engagement.valuePieces });
        run.leadSends.push(now);
        run.accountSends.push(now);
      }
    }
    if (event.type === 'postpone' && event.until > now && before.state === 'active') run.notBefore.push(event.until);
    e = d.enrollment;
    if (e.state !== 'active' && !run.endedAt) run.endedAt = now;
  };

  let next = 0;
  for (let guard = 0; ; guard++) {
    if (guard > 5_000) throw new Error('the engine did not settle');
    const due = e.state === 'active' ? e.nextDueAt : null;
    const ev = events[next];
    if (ev && (!due || ev.time <= due)) {
      next++;
      const now = ev.time;
      switch (ev.kind) {
        case 'engaged': {
          if (ev.piece) engagement.valuePieces++;
          engagement.score += 3;
          const sent = run.sends.map((x) => x.step);
          const step = sent[ev.open % Math.max(1, sent.length)];
          if (step) engagement.openedSteps.push(step);
          if (step && ev.tag !== null) engagement.clickedSteps.push(step);
          if (ev.tag !== null) engagement.clickedTags.push(`tag-${ev.tag}`);
          feed({ type: 'engaged' }, now);
          break;
        }
        case 'replied':
          engagement.replied = true;
          feed({ type: 'replied' }, now);
          break;
        case 'bounced':
        case 'unsubscribed':
          feed({ type: ev.kind }, now);
          break;
        case 'exit':
          feed({ type: 'exit', reason: 'manual' }, now);
          break;
        case 'advanced':
          feed({ type: 'advanced', toStage: ev.same ? seq.stage : 'desire' }, now);
          break;
        case 'postpone':
          feed({ type: 'postpone', until: new Date(now.getTime() + ev.forMinutes * 60_000), why: 'out of office' }, now);
          break;
        case 'otherSend':
          // Another sequence emailed this lead, or a colleague at the account.
          if (!ev.account) run.leadSends.push(now);
          run.accountSends.push(now);
          break;
      }
      continue;
    }
    if (!due || due.getTime() > horizon) break;
    if (due < (events[next - 1]?.time ?? s.start)) run.violations.push(`asked to wake in the past: ${due.toISOString()}`);
    feed({ type: 'wake' }, due);
  }
  return run;
}

function countIn(times: Date[], end: Date, per: number): number {
  return times.filter((t) => t.getTime() <= end.getTime() && end.getTime() - t.getTime() < per).length;
}

describe('engine invariants (property-based)', () => {
  const params = { numRuns: 300 };

  it('never sends a step twice, and sends nothing after an exit or completion', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const run = drive(s);
        expect(run.violations).toEqual([]);
        const steps = run.sends.map((x) => x.step);
        expect(new Set(steps).size).toBe(steps.length);
        if (run.endedAt) for (const x of run.sends) expect(x.at.getTime()).toBeLessThanOrEqual(run.endedAt.getTime());
      }),
      params,
    );
  });

  it('every send is inside the window, in the lead zone, and after any out-of-office return date', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const run = drive(s);
        const window = WINDOWS[s.window];
        for (const x of run.sends) {
          if (window) expect(isInWindow(x.at, window, s.zone), `${x.step} at ${x.at.toISOString()} in ${s.zone}`).toBe(true);
          for (const until of run.notBefore) {
            // A postponement announced before the send holds it back.
            if (until.getTime() > x.at.getTime()) {
              const announced = s.happenings.some((h) => h.kind === 'postpone' && s.start.getTime() + h.at * 60_000 <= x.at.getTime() && s.start.getTime() + (h.at + h.forMinutes) * 60_000 === until.getTime());
              expect(announced, `${x.step} sent at ${x.at.toISOString()} before the lead was back at ${until.toISOString()}`).toBe(false);
            }
          }
        }
      }),
      params,
    );
  });

  it('caps hold over every sliding period ending at one of its sends', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const run = drive(s);
        for (const x of run.sends) {
          if (s.caps.lead) expect(countIn(run.leadSends, x.at, parseDuration(s.caps.lead.per))).toBeLessThanOrEqual(s.caps.lead.max);
          if (s.caps.account) expect(countIn(run.accountSends, x.at, parseDuration(s.caps.account.per))).toBeLessThanOrEqual(s.caps.account.max);
        }
      }),
      params,
    );
  });

  it('a gated pitch goes out only once its gate is met, or after its timeout with onTimeout send', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const run = drive(s);
        for (const x of run.sends) {
          const step = run.seq.steps.find((st) => st.id === x.step);
          if (step?.type !== 'email' || !step.gate) continue;
          if (x.valuePieces >= step.gate.valuePieces) continue;
          const heldAt = run.holds.get(step.id);
          expect(step.gate.onTimeout, `${step.id} sent with ${x.valuePieces} of ${step.gate.valuePieces}`).toBe('send');
          expect(heldAt).toBeDefined();
          expect(x.at.getTime()).toBeGreaterThanOrEqual(heldAt!.getTime() + parseDuration(step.gate.timeout));
        }
      }),
      params,
    );
  });

  it('a gate that timed out with onTimeout send is never held again (a deferral does not restart it)', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const run = drive(s);
        for (const [stepId, times] of run.allHolds) {
          const step = run.seq.steps.find((st) => st.id === stepId);
          if (step?.type !== 'email' || step.gate?.onTimeout !== 'send') continue;
          const timeoutAt = times[0]!.getTime() + parseDuration(step.gate.timeout);
          for (const t of times) expect(t.getTime(), `${stepId} held again at ${t.toISOString()}`).toBeLessThan(timeoutAt);
        }
      }),
      params,
    );
  });
});

describe('simulator invariants (property-based)', () => {
  const funnel = makeFunnel({ defaults: { timeZone: 'UTC', window: WINDOWS[1] }, caps: { lead: { max: 2, per: '3d' } }, advancement: { interest: { when: { valuePieces: { gte: 3 } } } } });
  const simEvent = (emailIds: string[]) =>
    fc.record({
      at: minutes,
      type: fc.constantFrom('open' as const, 'click' as const, 'click' as const, 'reply' as const, 'unsubscribe' as const, 'bounce' as const, 'out_of_office' as const),
      step: fc.option(fc.constantFrom(...(emailIds.length ? emailIds : ['none'])), { nil: undefined }),
      tag: fc.option(fc.constantFrom('value:a', 'value:b', 'tag-1'), { nil: undefined }),
      back: fc.integer({ min: 1, max: 20 * 24 * 60 }),
    });

  it('the timeline never repeats a send, stops at an exit, and keeps to the window and caps', () => {
    fc.assert(
      fc.property(
        sequenceArb.chain((seq) => fc.record({ seq: fc.constant(seq), zone: fc.constantFrom(...ZONES), start: fc.integer({ min: Date.UTC(2026, 0, 1), max: Date.UTC(2026, 11, 1) }), events: fc.array(simEvent(seq.steps.filter((x) => x.type === 'email').map((x) => x.id)), { maxLength: 12 }) })),
        ({ seq, zone, start, events }) => {
          const t0 = new Date(start - (start % 60_000));
          const simEvents: SimEvent[] = events.map((e) => ({
            at: new Date(t0.getTime() + e.at * 60_000),
            type: e.type,
            ...(e.step && e.step !== 'none' && (e.type === 'open' || e.type === 'click') ? { step: e.step } : {}),
            ...(e.tag && e.type === 'click' ? { tag: e.tag } : {}),
            ...(e.type === 'out_of_office' ? { until: new Date(t0.getTime() + (e.at + e.back) * 60_000) } : {}),
          }));
          const timeline = simulate({ sequence: seq, funnel, lead: { persona: 'champion', stage: 'interest', timeZone: zone }, events: simEvents, start: t0 });
          const sends = timeline.filter((x) => x.type === 'send');
          expect(new Set(sends.map((x) => x.step)).size).toBe(sends.length);
          const exit = timeline.findIndex((x) => x.type === 'exit');
          if (exit >= 0) expect(timeline.slice(exit + 1)).toEqual([]);
          for (const x of sends) {
            expect(isInWindow(x.at, WINDOWS[1]!, zone)).toBe(true);
            expect(countIn(sends.map((y) => y.at), x.at, 3 * DAY)).toBeLessThanOrEqual(2);
          }
          // Time only moves forward.
          for (let i = 1; i < timeline.length; i++) expect(timeline[i]!.at.getTime()).toBeGreaterThanOrEqual(timeline[i - 1]!.at.getTime());
        },
      ),
      { numRuns: 200 },
    );
  });
});
