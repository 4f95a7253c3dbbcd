// `nurture simulate`: the same decide() the workers call, driven by a virtual clock and a scripted lead.
// The simulator decides nothing itself. It keeps the facts the database would keep (engagement from the
// scripted events, the sends it was told about) and jumps the clock to whichever comes first: the time the
// engine asked to be woken at, or the next event. Pure: no I/O, no real clock.
import { evaluateAdvance } from '../advancement/rules.js';
import { addToScore, scoreAt, valuePieceOf, type SignalKind } from '../advancement/score.js';
import type { Funnel, Sequence } from '../config/schema.js';
import type { Engagement, Profile } from './conditions.js';
import { decide, initialEnrollment, type Command, type EngineEvent, type EnrollmentState, type Facts } from './decide.js';
import { localTime } from './time.js';

export const SIM_EVENT_TYPES = ['open', 'click', 'reply', 'unsubscribe', 'bounce', 'out_of_office'] as const;
export type SimEventType = (typeof SIM_EVENT_TYPES)[number];

/** Something the scripted lead does. Opens and clicks are human ones: the simulator has no machines. */
export interface SimEvent {
  at: Date;
  type: SimEventType;
  /** The email step opened or clicked in. */
  step?: string;
  /** The clicked link's tag (`value:<piece>` counts as a value piece). */
  tag?: string;
  /** Out-of-office: the return date. */
  until?: Date;
}

export interface SimLead {
  persona: string;
  stage: string;
  timeZone?: string;
  /** Lead fields as filters see them under `lead.` (title, email, attributes, …). */
  fields?: Record<string, unknown>;
  /** Account fields as filters see them under `account.` (tier, industry, timeZone, attributes, …). */
  account?: Record<string, unknown>;
}

export interface SimulateInput {
  sequence: Sequence;
  funnel: Funnel;
  lead: SimLead;
  events: SimEvent[];
  start: Date;
  /** Default: 90 days after start. */
  until?: Date;
  /** Sends made before `start` by other sequences, counted against the caps. */
  priorSends?: { lead?: Date[]; account?: Date[] };
}

export interface TimelineEntry {
  at: Date;
  /** The same moment on the lead's wall clock, e.g. "Tue 2026-01-13 09:00 EST". */
  local: string;
  kind: 'command' | 'event' | 'advance' | 'stop';
  /** The command's or event's type; `advanced` for a stage move; `until` when the simulation ran out of time. */
  type: string;
  step?: string;
  detail: string;
  command?: Command;
  event?: SimEvent;
}

const DAY = 86_400_000;
/** Each decision either ends the run or moves its clock or cursor on; this only catches an engine bug. */
const MAX_DECISIONS = 10_000;

export function simulate(input: SimulateInput): TimelineEntry[] {
  const { sequence: seq, funnel, lead, start } = input;
  const until = input.until ?? new Date(start.getTime() + 90 * DAY);
  const timeZone = lead.timeZone ?? stringField(lead.account?.timeZone) ?? funnel.defaults.timeZone;
  const window = seq.window ?? funnel.defaults.window ?? null;
  const profile: Profile = {
    lead: { ...lead.fields, persona: lead.persona, stage: lead.stage, timeZone },
    account: { ...lead.account },
  };
  const events = [...input.events].sort((a, b) => a.at.getTime() - b.at.getTime());
  const leadSends = [...(input.priorSends?.lead ?? [])];
  const accountSends = [...(input.priorSends?.account ?? [])];

  // What the signals table and the lead row would hold.
  let stage = lead.stage;
  let scoreBase = 0;
  let replied = false;
  const pieces = new Set<string>();
  const opened = new Set<string>();
  const clicked = new Set<string>();
  const tags = new Set<string>();

  const engagement = (now: Date): Engagement => ({
    score: scoreAt(funnel, scoreBase, now),
    valuePieces: pieces.size,
    replied,
    openedSteps: [...opened],
    clickedSteps: [...clicked],
    clickedTags: [...tags],
  });
  const facts = (now: Date): Facts => ({
    timeZone,
    window,
    caps: funnel.caps,
    recentSends: { lead: [...leadSends], account: [...accountSends] },
    engagement: engagement(now),
    profile,
  });

  const timeline: TimelineEntry[] = [];
  const local = (at: Date) => formatLocal(at, timeZone);
  const describe = (c: Command) => describeCommand(c, seq, funnel, timeZone);
  let enrollment: EnrollmentState = initialEnrollment(seq, start);
  let decisions = 0;

  const feed = (event: EngineEvent, now: Date) => {
    if (++decisions > MAX_DECISIONS) throw new Error(`simulation of ${seq.id} did not settle after ${MAX_DECISIONS} decisions`);
    const d = decide(seq, enrollment, event, facts(now), now);
    enrollment = d.enrollment;
    for (const c of d.commands) {
      if (c.type === 'send') {
        leadSends.push(now);
        accountSends.push(now);
      }
      timeline.push({ at: now, local: local(now), kind: 'command', type: c.type, ...stepOf(c), detail: describe(c), command: c });
    }
  };

  const signal = (kind: SignalKind, at: Date, valuePiece: string | null = null) => {
    scoreBase = addToScore(funnel, scoreBase, { kind, human: true, valuePiece, at });
  };

  const happen = (ev: SimEvent) => {
    const now = ev.at;
    const entry: TimelineEntry = { at: now, local: local(now), kind: 'event', type: ev.type, ...(ev.step ? { step: ev.step } : {}), detail: describeEvent(ev, timeZone), event: ev };
    const email = ev.step ? seq.steps.find((s) => s.id === ev.step && s.type === 'email') : undefined;
    if ((ev.type === 'open' || ev.type === 'click') && ev.step && !enrollment.progress.sent.includes(ev.step)) {
      // A person cannot open what was never sent: the script is ahead of the sequence.
      timeline.push({ ...entry, detail: `${entry.detail} — ignored: ${ev.step} has not been sent` });
      return;
    }
    timeline.push(entry);
    switch (ev.type) {
      case 'open':
        if (ev.step) opened.add(ev.step);
        signal('open', now);
        feed({ type: 'engaged' }, now);
        break;
      case 'click': {
        const piece = valuePieceOf(ev.tag ?? null, email?.type === 'email' ? email.kind : 'pitch', seq.id, ev.step ?? null);
        if (ev.step) {
          // A click implies an open, even with images blocked.
          opened.add(ev.step);
          clicked.add(ev.step);
        }
        if (ev.tag) tags.add(ev.tag);
        if (piece) pieces.add(piece);
        signal('click', now, piece);
        feed({ type: 'engaged' }, now);
        break;
      }
      case 'reply':
        replied = true;
        signal('reply', now);
        feed({ type: 'replied' }, now);
        break;
      case 'unsubscribe':
        feed({ type: 'unsubscribed' }, now);
        return;
      case 'bounce':
        feed({ type: 'bounced' }, now);
        return;
      case 'out_of_office':
        if (ev.until) feed({ type: 'postpone', until: ev.until, why: 'out of office' }, now);
        return;
    }
    // Engagement may cross the funnel's value-first threshold: the lead moves on, as recordSignals does.
    if (enrollment.state !== 'active') return;
    const advance = evaluateAdvance(funnel, stage, engagement(now), profile);
    if (!advance) return;
    timeline.push({ at: now, local: local(now), kind: 'advance', type: 'advanced', detail: `lead advanced ${advance.from} → ${advance.to} by ${advance.rule} because ${advance.evidence.because.join('; ')}` });
    stage = advance.to;
    profile.lead.stage = stage;
    // Engagement counts toward the stage it happened in.
    scoreBase = 0;
    replied = false;
    pieces.clear();
    tags.clear();
    feed({ type: 'advanced', toStage: stage }, now);
  };

  let next = 0;
  while (enrollment.state === 'active') {
    const due = enrollment.nextDueAt;
    const ev = events[next];
    if (ev && (!due || ev.at.getTime() <= due.getTime())) {
      if (ev.at > until) break;
      next++;
      happen(ev);
      continue;
    }
    if (!due || due > until) break;
    feed({ type: 'wake' }, due);
  }

  if (enrollment.state === 'active') {
    const pending = enrollment.nextDueAt ? `; ${enrollment.cursor ?? 'the end'} is due ${formatLocal(enrollment.nextDueAt, timeZone)}` : '';
    timeline.push({ at: until, local: local(until), kind: 'stop', type: 'until', detail: `stop: simulated up to ${formatLocal(until, timeZone)}, still active${pending}` });
  }
  return timeline;
}

/** "Tue 2026-01-13 09:00 EST": the lead's wall clock, with the zone's own abbreviation or offset. */
export function formatLocal(at: Date, timeZone: string): string {
  const l = localTime(at, timeZone);
  const zone = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'short' }).formatToParts(at).find((p) => p.type === 'timeZoneName')?.value ?? timeZone;
  const weekday = l.weekday[0]!.toUpperCase() + l.weekday.slice(1);
  return `${weekday} ${l.year}-${pad(l.month)}-${pad(l.day)} ${pad(l.hour)}:${pad(l.minute)} ${zone}`;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** Which sender a step goes out from, as a key of funnel.senders or `owner`. */
export function senderKeyOf(seq: Sequence, funnel: Funnel, step: { sender?: string | undefined }): string {
  return step.sender ?? seq.sender ?? (seq.mode === 'one_to_one' ? 'owner' : (Object.keys(funnel.senders)[0] ?? 'none'));
}

const DEFER_WHY: Record<Extract<Command, { type: 'defer' }>['why'], string> = {
  window: 'window',
  cap_lead: 'lead cap',
  cap_account: 'account cap',
  out_of_office: 'out of office',
  paused: 'paused by the person',
};

export function describeCommand(c: Command, seq: Sequence, funnel: Funnel, timeZone: string): string {
  switch (c.type) {
    case 'send':
      return `send ${c.step.id} (${c.step.kind}) from ${senderKeyOf(seq, funnel, c.step)}, template ${c.step.template}${c.step.subject ? `, subject "${c.step.subject}"` : ''}`;
    case 'wakeAt':
      return c.why === 'next step' ? 'continue with the next step' : `wait until ${formatLocal(c.at, timeZone)} (${c.why})`;
    case 'defer':
      return `defer ${c.step} until ${formatLocal(c.until, timeZone)} (${DEFER_WHY[c.why]})`;
    case 'hold':
      return `hold ${c.step} until ${formatLocal(c.until, timeZone)}: ${c.reason}`;
    case 'skip':
      return `skip ${c.step}: ${c.reason}`;
    case 'branch':
      return `branch ${c.step} → ${c.to ?? 'end'} because ${c.because.join('; ')}`;
    case 'exit':
      return `exit ${c.reason}${c.because ? ` (${c.because})` : ''}`;
  }
}

function describeEvent(ev: SimEvent, timeZone: string): string {
  switch (ev.type) {
    case 'open':
      return `lead opened ${ev.step ?? 'an email'}`;
    case 'click':
      return `lead clicked ${ev.tag ? `a link tagged ${ev.tag}` : 'a link'}${ev.step ? ` in ${ev.step}` : ''}`;
    case 'reply':
      return 'lead replied';
    case 'unsubscribe':
      return 'lead unsubscribed';
    case 'bounce':
      return 'address bounced';
    case 'out_of_office':
      return `out-of-office reply${ev.until ? `, back ${formatLocal(ev.until, timeZone)}` : ''}`;
  }
}

function stepOf(c: Command): { step?: string } {
  switch (c.type) {
    case 'send':
      return { step: c.step.id };
    case 'defer':
    case 'hold':
    case 'skip':
    case 'branch':
      return { step: c.step };
    default:
      return {};
  }
}

function stringField(v: unknown): string | undefined {
  return typeof v === 'string' && v ? v : undefined;
}
