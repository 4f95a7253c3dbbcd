// The engine's heart: (sequence, enrollment, event, facts, now) → (enrollment, commands). No I/O.
// Workers and the simulator both call this; neither decides anything on its own.
import { parseDuration } from '../config/duration.js';
import type { Cap, EmailStep, ExitReason, Sequence, Step, Window } from '../config/schema.js';
import { evaluate, type Engagement, type Profile } from './conditions.js';
import { addBusinessDays, isInWindow, nextWindowOpen } from './time.js';

export type EngineEvent =
  | { type: 'wake' }
  /** Human engagement arrived: a held gate may now open. */
  | { type: 'engaged' }
  | { type: 'replied' }
  | { type: 'bounced' }
  | { type: 'unsubscribed' }
  | { type: 'advanced'; toStage: string }
  | { type: 'exit'; reason: 'manual' }
  /** An out-of-office said the person is away until `until`: nothing goes out before then. */
  | { type: 'postpone'; until: Date; why: string }
  /** An operator sends a deferred email step now, past its window, caps or out-of-office (not past a gate). */
  | { type: 'release'; step?: string };

export interface Progress {
  /** Email steps already handed to the send queue: never sent again, whatever the YAML becomes. */
  sent: string[];
  /** The wait step whose due time is in nextDueAt. */
  waiting?: string;
  /** A pitch held by its value-first gate since this time. */
  gate?: { step: string; since: string };
  /** Nothing is sent before this time (out-of-office). */
  notBefore?: string;
  /** A message of this enrollment could not be rendered (a required value is missing): nothing moves until it is fixed. */
  heldBy?: string;
  /** The email step waiting for its window, a cap or a return date, and which: what a replan or a release looks at. */
  deferred?: { step: string; why: DeferReason };
  /** Set only while deciding a release: this deferred step goes out at once. */
  released?: string;
}

export type DeferReason = 'window' | 'cap_lead' | 'cap_account' | 'out_of_office' | 'paused';

export interface EnrollmentState {
  state: 'active' | 'completed' | 'exited';
  cursor: string | null;
  nextDueAt: Date | null;
  exitReason: string | null;
  progress: Progress;
}

export interface Facts {
  /** The lead's zone, else the account's, else the funnel default. */
  timeZone: string;
  /** The sequence's window, else the funnel default; null sends any time. */
  window: Window | null;
  caps: { lead?: Cap; account?: Cap };
  /** When this lead (and anyone at the account) was last emailed, by any sequence. */
  recentSends: { lead: Date[]; account: Date[] };
  engagement: Engagement;
  profile: Profile;
  /** Step ids, in order, of the version the enrollment started on, when the YAML has changed since. */
  priorStepIds?: string[];
  /**
   * What the person chose on the preference page: only their rep's one-to-one mail (segmented sequences
   * end), or no mail at all until a time (steps wait). Absent: everything.
   */
  preference?: { repOnly: boolean; pausedUntil: Date | null };
}

export type Command =
  | { type: 'send'; step: EmailStep }
  | { type: 'wakeAt'; at: Date; why: string }
  | { type: 'defer'; step: string; until: Date; why: DeferReason }
  | { type: 'hold'; step: string; until: Date; reason: string }
  | { type: 'skip'; step: string; reason: string }
  | { type: 'branch'; step: string; to: string | null; because: string[] }
  | { type: 'exit'; reason: ExitReason; because?: string };

export interface Decision {
  enrollment: EnrollmentState;
  commands: Command[];
}

/** No sequence can loop: branches only go forward. The bound is a belt to those braces. */
const MAX_STEPS_PER_DECISION = 1_000;

export function decide(seq: Sequence, enrollment: EnrollmentState, event: EngineEvent, facts: Facts, now: Date): Decision {
  if (enrollment.state !== 'active') return { enrollment, commands: [] };
  const e: EnrollmentState = { ...enrollment, progress: { ...enrollment.progress, sent: [...enrollment.progress.sent] } };

  switch (event.type) {
    case 'bounced':
    case 'unsubscribed':
      return exit(e, event.type);
    case 'exit':
      return exit(e, 'manual');
    case 'replied':
      // One-to-one mail is a conversation: once the person answers, the rep takes it from there.
      if (seq.mode === 'one_to_one' || seq.exitOn.includes('replied')) return exit(e, 'replied');
      return { enrollment: e, commands: [] };
    case 'advanced':
      if (seq.exitOn.includes('advanced') && event.toStage !== seq.stage) return exit(e, 'advanced', `lead moved to ${event.toStage}`);
      return { enrollment: e, commands: [] };
    case 'postpone': {
      const until = event.until;
      if (until <= now) return { enrollment: e, commands: [] };
      // Postponements only extend: two auto-replies give the same answer in either order.
      const already = e.progress.notBefore ? new Date(e.progress.notBefore) : null;
      if (already && already >= until) return { enrollment: e, commands: [] };
      e.progress.notBefore = until.toISOString();
      if (e.nextDueAt && e.nextDueAt < until) e.nextDueAt = until;
      return { enrollment: e, commands: [{ type: 'wakeAt', at: e.nextDueAt ?? until, why: event.why }] };
    }
    case 'engaged':
      if (!e.progress.gate) return { enrollment: e, commands: [] };
      return run(seq, e, facts, now);
    case 'wake':
      return run(seq, e, facts, now);
    case 'release': {
      // Only a step that is waiting on a window, a cap or a return date; a gate is value-first, not a delay.
      const deferred = e.progress.deferred;
      if (!deferred || deferred.step !== e.cursor || (event.step && event.step !== deferred.step)) return { enrollment: e, commands: [] };
      e.progress.released = deferred.step;
      const d = run(seq, e, facts, now);
      // Released for this decision only: a step it could not send (a gate held it) waits like any other.
      delete d.enrollment.progress.released;
      return d;
    }
  }
}

function run(seq: Sequence, e: EnrollmentState, facts: Facts, now: Date): Decision {
  if (e.progress.heldBy) return { enrollment: e, commands: [] };
  const commands: Command[] = [];
  const index = new Map(seq.steps.map((s, i) => [s.id, i]));
  const next = (step: Step): string | null => seq.steps[index.get(step.id)! + 1]?.id ?? null;
  e.cursor = remapCursor(e.cursor, index, facts.priorStepIds);
  let sentThisTurn = false;

  for (let guard = 0; guard < MAX_STEPS_PER_DECISION; guard++) {
    if (e.cursor === null) {
      e.state = 'completed';
      e.exitReason = 'completed';
      e.nextDueAt = null;
      commands.push({ type: 'exit', reason: 'completed' });
      return { enrollment: e, commands };
    }
    const step = seq.steps[index.get(e.cursor)!]!;

    switch (step.type) {
      case 'email': {
        if (e.progress.sent.includes(step.id)) {
          e.cursor = next(step);
          continue;
        }
        // One email per decision: caps and windows are judged afresh, with the send just made counted.
        if (sentThisTurn) return wake(e, commands, now, 'next step');
        if (facts.preference?.repOnly && seq.mode === 'segmented') {
          const d = exit(e, 'preference', 'the person keeps only their rep\'s one-to-one mail');
          return { enrollment: d.enrollment, commands: [...commands, ...d.commands] };
        }
        const released = e.progress.released === step.id;
        // The person's own pause outranks an operator's release.
        const pausedUntil = facts.preference?.pausedUntil;
        if (pausedUntil && pausedUntil > now) return defer(e, commands, step.id, pausedUntil, 'paused');
        const notBefore = e.progress.notBefore ? new Date(e.progress.notBefore) : null;
        if (!released && notBefore && notBefore > now) return defer(e, commands, step.id, notBefore, 'out_of_office');
        if (step.gate) {
          const since = e.progress.gate?.step === step.id ? new Date(e.progress.gate.since) : now;
          const timeoutAt = new Date(since.getTime() + parseDuration(step.gate.timeout));
          if (facts.engagement.valuePieces < step.gate.valuePieces) {
            if (now < timeoutAt) {
              e.progress.gate = { step: step.id, since: since.toISOString() };
              e.nextDueAt = timeoutAt;
              commands.push({
                type: 'hold',
                step: step.id,
                until: timeoutAt,
                reason: `value-first gate: ${facts.engagement.valuePieces} of ${step.gate.valuePieces} value pieces engaged`,
              });
              return { enrollment: e, commands };
            }
            // onTimeout send keeps the gate's start: a window or cap deferral must not restart the timeout.
            if (step.gate.onTimeout === 'skip') {
              delete e.progress.gate;
              commands.push({ type: 'skip', step: step.id, reason: `value-first gate timed out after ${step.gate.timeout} with ${facts.engagement.valuePieces} of ${step.gate.valuePieces} value pieces` });
              e.cursor = next(step);
              continue;
            }
          }
        }
        if (!released) {
          const held = firstSendable(facts, now);
          if (held) return defer(e, commands, step.id, held.until, held.why);
        }

        delete e.progress.gate;
        delete e.progress.deferred;
        delete e.progress.released;
        e.progress.sent.push(step.id);
        commands.push({ type: 'send', step });
        sentThisTurn = true;
        e.cursor = next(step);
        continue;
      }
      case 'wait': {
        if (e.progress.waiting === step.id && e.nextDueAt) {
          if (now >= e.nextDueAt) {
            delete e.progress.waiting;
            e.cursor = next(step);
            continue;
          }
          return wake(e, commands, e.nextDueAt, `wait ${step.id}`);
        }
        e.progress.waiting = step.id;
        return wake(e, commands, waitUntil(step, now, facts.timeZone), `wait ${step.id}`);
      }
      case 'branch': {
        const verdict = evaluate(step.when, facts.engagement, facts.profile);
        const to = verdict.met ? step.then : (step.else ?? next(step));
        commands.push({ type: 'branch', step: step.id, to, because: verdict.because });
        e.cursor = to;
        continue;
      }
      case 'goal': {
        const verdict = evaluate(step.when, facts.engagement, facts.profile);
        if (verdict.met) {
          const d = exit(e, 'converted', verdict.because.join('; '));
          return { enrollment: d.enrollment, commands: [...commands, ...d.commands] };
        }
        e.cursor = next(step);
        continue;
      }
    }
  }
  throw new Error(`sequence ${seq.id} did not settle within ${MAX_STEPS_PER_DECISION} steps`);
}

function wake(e: EnrollmentState, commands: Command[], at: Date, why: string): Decision {
  e.nextDueAt = at;
  commands.push({ type: 'wakeAt', at, why });
  return { enrollment: e, commands };
}

function defer(e: EnrollmentState, commands: Command[], step: string, until: Date, why: DeferReason): Decision {
  e.nextDueAt = until;
  e.progress.deferred = { step, why };
  commands.push({ type: 'defer', step, until, why });
  return { enrollment: e, commands };
}

function exit(e: EnrollmentState, reason: ExitReason, because?: string): Decision {
  e.state = 'exited';
  e.exitReason = reason;
  e.nextDueAt = null;
  return { enrollment: e, commands: [{ type: 'exit', reason, ...(because ? { because } : {}) }] };
}

function waitUntil(step: Extract<Step, { type: 'wait' }>, now: Date, tz: string): Date {
  if (step.for) return new Date(now.getTime() + parseDuration(step.for));
  if (step.businessDays) return addBusinessDays(now, step.businessDays, tz);
  return nextWindowOpen(new Date(now.getTime() + 60_000), step.until!, tz);
}

/** When a cap is full, the moment enough of the counted sends age out of its period. */
/**
 * When the window and the caps first all let a send go, if not now: a window's opening inside a capped
 * week is no time to send, nor a cap's end on a Saturday, so each is checked again from where the other
 * moved it. `why` names a cap whenever one held the step back (the window then only rounds the time to
 * its next opening), else the window.
 */
function firstSendable(facts: Facts, now: Date): { until: Date; why: DeferReason } | null {
  let at = now;
  const held = new Set<DeferReason>();
  // Each turn moves the time forward to a window's opening or a cap's end: a few turns always settle it.
  for (let turn = 0; turn < 8; turn++) {
    const window = facts.window && !isInWindow(at, facts.window, facts.timeZone) ? nextWindowOpen(at, facts.window, facts.timeZone) : null;
    const lead = window ? null : capUntil(facts.recentSends.lead, facts.caps.lead, at);
    const account = window || lead ? null : capUntil(facts.recentSends.account, facts.caps.account, at);
    const until = window ?? lead ?? account;
    if (!until) break;
    at = until;
    held.add(window ? 'window' : lead ? 'cap_lead' : 'cap_account');
  }
  const why = (['cap_lead', 'cap_account', 'window'] as const).find((r) => held.has(r));
  return why ? { until: at, why } : null;
}

export function capUntil(sends: Date[], cap: Cap | undefined, now: Date): Date | null {
  if (!cap) return null;
  const per = parseDuration(cap.per);
  const inPeriod = sends.filter((s) => now.getTime() - s.getTime() < per).sort((a, b) => a.getTime() - b.getTime());
  if (inPeriod.length < cap.max) return null;
  return new Date(inPeriod[inPeriod.length - cap.max]!.getTime() + per);
}

/**
 * Live edits: an enrollment whose next step was removed from the YAML moves on to the next step of
 * its old version that still exists; with nothing left it completes.
 */
export function remapCursor(cursor: string | null, index: ReadonlyMap<string, number>, prior: string[] | undefined): string | null {
  if (cursor === null || index.has(cursor)) return cursor;
  if (!prior) return null;
  const at = prior.indexOf(cursor);
  for (const id of prior.slice(at + 1)) if (index.has(id)) return id;
  return null;
}

/**
 * Whether a step deferred to its window would now be due at another time: the lead's or account's zone,
 * or the window in the config, changed since it was planned. A wake plans it again.
 */
export function needsReplan(e: EnrollmentState, facts: Pick<Facts, 'window' | 'timeZone'>, now: Date): boolean {
  if (e.state !== 'active' || e.progress.deferred?.why !== 'window' || !e.nextDueAt || e.nextDueAt <= now) return false;
  const due = facts.window && !isInWindow(now, facts.window, facts.timeZone) ? nextWindowOpen(now, facts.window, facts.timeZone) : now;
  return due.getTime() !== e.nextDueAt.getTime();
}

export function initialEnrollment(seq: Sequence, now: Date): EnrollmentState {
  return { state: 'active', cursor: seq.steps[0]!.id, nextDueAt: now, exitReason: null, progress: { sent: [] } };
}
