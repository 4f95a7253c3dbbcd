// One person's whole story: where each enrollment stands and why, every message with its state and the
// relay's reply, every signal with its verdict and evidence, the score over time, the stage moves with
// the rule and evidence that fired, and any suppression. The console's lead page and GET /v1/leads/:email.
import { addToScore, scoreAt, valuePieceOf, type SignalKind } from '../advancement/score.js';
import type { Context } from '../context.js';
import { advancesOfLead, enrollmentsOfLead, leadByEmail, leadsMatching, messagesOfLead, signalsOfLead, suppressionOf } from '../db/reads.js';
import type { Progress } from '../engine/decide.js';
import { readActivity, type ActivityPage } from './activityFeed.js';
import { UseCaseError } from './errors.js';
import { isEmail } from './inputs.js';
import { zoneOf } from './engineInput.js';

export type ReadContext = Pick<Context, 'db' | 'config' | 'now'>;

export interface EnrollmentView {
  id: string;
  sequence: string;
  version: string;
  state: string;
  /** The step to run next, and when it is due (UTC, and as the lead reads it). */
  nextStep: string | null;
  dueAt: string | null;
  dueLocal: string | null;
  /** Why nothing goes out yet, in words; null when the step is simply due. */
  waiting: string | null;
  /** A step an operator may release now (waiting on a window, a cap or a return date; never a gate). */
  releasable: string | null;
  stepsSent: string[];
  exitReason: string | null;
  enteredAt: string;
  endedAt: string | null;
}

export interface MessageView {
  id: string;
  sequence: string;
  step: string;
  status: string;
  subject: string | null;
  to: string;
  from: string | null;
  messageId: string;
  attempts: number;
  queuedAt: string;
  sentAt: string | null;
  relayReply: string | null;
  error: string | null;
}

export interface SignalView {
  id: number;
  kind: string;
  human: boolean;
  reason: string;
  /** A person's open or click counts only once settled; until then the verdict may still change. */
  settled: boolean;
  settlesAt: string | null;
  at: string;
  sequence: string | null;
  step: string | null;
  messageRowId: string | null;
  link: string | null;
  tag: string | null;
  evidence: Record<string, unknown>;
}

export interface AdvanceView {
  scope: 'lead' | 'account';
  from: string | null;
  to: string;
  rule: string;
  evidence: Record<string, unknown>;
  at: string;
}

export interface LeadTimeline {
  lead: {
    email: string;
    name: string | null;
    title: string | null;
    persona: string;
    stage: string;
    stageEnteredAt: string;
    status: string;
    owner: { name: string; email: string } | null;
    zone: string;
    score: number;
    valuePieces: string[];
    repliedAt: string | null;
    engagedAt: string | null;
    createdAt: string;
    attributes: Record<string, unknown>;
  };
  account: { key: string; name: string; domain: string | null; stage: string | null };
  suppression: { reason: string; source: string; since: string } | null;
  enrollments: EnrollmentView[];
  messages: MessageView[];
  signals: SignalView[];
  /** The score in the current stage after each settled signal that moved it (it starts at 0 in a stage). */
  score: { at: string; score: number; signal: string }[];
  advances: AdvanceView[];
  /** The lead's log, newest page (read on with GET /v1/activity?lead=…&before=older). */
  activity: ActivityPage;
}

export function normaliseEmail(input: string, field = 'email'): string {
  const email = input.trim().toLowerCase();
  if (!isEmail(email)) throw new UseCaseError('invalid_email', `"${input.slice(0, 100)}" is not an email address`, field);
  return email;
}

/** A time as the lead reads it: "Tue 3 Mar, 09:00 (Europe/Berlin)". */
export function localTime(at: Date, zone: string): string {
  const text = new Intl.DateTimeFormat('en-GB', { timeZone: zone, weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hour12: false }).format(at);
  return `${text} (${zone})`;
}

function waitingOf(p: Partial<Progress>, row: { state: string; cursor: string | null; nextDueAt: Date | null }, now: Date): { waiting: string | null; releasable: string | null } {
  if (row.state !== 'active') return { waiting: null, releasable: null };
  if (p.heldBy) return { waiting: `held: ${p.heldBy}`, releasable: null };
  if (p.deferred) return { waiting: `"${p.deferred.step}" deferred: ${DEFER_WORDS[p.deferred.why] ?? p.deferred.why}`, releasable: p.deferred.step };
  if (p.gate) return { waiting: `"${p.gate.step}" held by its value-first gate since ${p.gate.since}`, releasable: null };
  if (p.notBefore && new Date(p.notBefore) > now) return { waiting: `out of office until ${p.notBefore}`, releasable: null };
  if (p.waiting) return { waiting: `waiting (step "${p.waiting}")`, releasable: null };
  if (!row.cursor) return { waiting: 'no steps left', releasable: null };
  return { waiting: null, releasable: null };
}

const DEFER_WORDS: Record<string, string> = {
  window: 'outside its send window',
  cap_lead: "the lead's frequency cap",
  cap_account: "the account's frequency cap",
  out_of_office: 'the lead is out of office',
};

export async function leadTimeline(ctx: ReadContext, emailInput: string): Promise<LeadTimeline> {
  const email = normaliseEmail(emailInput);
  const found = await leadByEmail(ctx.db, email);
  if (!found) throw new UseCaseError('unknown_lead', `no lead with email ${email}`, 'email');
  const { lead, account } = found;
  const now = ctx.now();
  const funnel = ctx.config.funnel;
  const zone = zoneOf(ctx, lead, account);
  const [suppression, enrollmentRows, messageRows, signalRows, advanceRows, activity] = await Promise.all([
    suppressionOf(ctx.db, email),
    enrollmentsOfLead(ctx.db, lead.id),
    messagesOfLead(ctx.db, lead.id, 500),
    signalsOfLead(ctx.db, lead.id, 1000),
    advancesOfLead(ctx.db, lead.id, account.id),
    readActivity(ctx.db, { lead: email }, { limit: 200 }, ctx.config.funnel.defaults.timeZone),
  ]);

  // The score as the lead's current stage counts it: settled signals since the stage began, in order.
  const score: LeadTimeline['score'] = [];
  let base = 0;
  for (const { signal: s, messageKind } of [...signalRows].reverse()) {
    if (!s.settledAt || s.occurredAt < lead.stageEnteredAt) continue;
    const piece = s.kind === 'click' && s.human ? valuePieceOf(s.tag, messageKind ?? 'value', s.sequenceId, s.stepId) : null;
    const next = addToScore(funnel, base, { kind: s.kind as SignalKind, human: s.human, valuePiece: piece, at: s.occurredAt });
    if (next === base) continue;
    base = next;
    score.push({ at: s.occurredAt.toISOString(), score: round2(scoreAt(funnel, base, s.occurredAt)), signal: `${s.kind}${piece ? ` (${piece})` : ''}` });
  }

  const name = [lead.firstName, lead.lastName].filter(Boolean).join(' ') || null;
  return {
    lead: {
      email,
      name,
      title: lead.title,
      persona: lead.persona,
      stage: lead.stage,
      stageEnteredAt: lead.stageEnteredAt.toISOString(),
      status: lead.status,
      owner: lead.owner ? { name: lead.owner.name, email: lead.owner.email } : null,
      zone,
      score: round2(scoreAt(funnel, lead.scoreBase, now)),
      valuePieces: lead.valuePieces,
      repliedAt: lead.repliedAt?.toISOString() ?? null,
      engagedAt: lead.engagedAt?.toISOString() ?? null,
      createdAt: lead.createdAt.toISOString(),
      attributes: lead.attributes,
    },
    account: { key: account.key, name: account.name, domain: account.domain, stage: account.stage },
    suppression: suppression ? { reason: suppression.reason, source: suppression.source, since: suppression.createdAt.toISOString() } : null,
    enrollments: enrollmentRows.map((e) => {
      const p = e.progress as Partial<Progress>;
      return {
        id: e.id,
        sequence: e.sequenceId,
        version: e.sequenceVersion,
        state: e.state,
        nextStep: e.state === 'active' ? e.cursor : null,
        dueAt: e.state === 'active' ? (e.nextDueAt?.toISOString() ?? null) : null,
        dueLocal: e.state === 'active' && e.nextDueAt ? localTime(e.nextDueAt, zone) : null,
        ...waitingOf(p, e, now),
        stepsSent: p.sent ?? [],
        exitReason: e.exitReason,
        enteredAt: e.enteredAt.toISOString(),
        endedAt: e.endedAt?.toISOString() ?? null,
      };
    }),
    messages: messageRows.map((m) => ({
      id: m.id,
      sequence: m.sequenceId,
      step: m.stepId,
      status: m.status,
      subject: m.subject,
      to: m.toAddress,
      from: m.fromAddress,
      messageId: m.messageId,
      attempts: m.attempts,
      queuedAt: m.queuedAt.toISOString(),
      sentAt: m.sentAt?.toISOString() ?? null,
      relayReply: m.relayResponse,
      error: m.error,
    })),
    signals: signalRows.map(({ signal: s }) => ({
      id: s.id,
      kind: s.kind,
      human: s.human,
      reason: s.reason,
      settled: s.settledAt !== null,
      settlesAt: s.settledAt ? null : (s.settlesAt?.toISOString() ?? null),
      at: s.occurredAt.toISOString(),
      sequence: s.sequenceId,
      step: s.stepId,
      messageRowId: s.messageId,
      link: s.linkId,
      tag: s.tag,
      evidence: s.evidence,
    })),
    score,
    advances: advanceRows.map((a) => ({ scope: a.leadId ? 'lead' : 'account', from: a.fromStage, to: a.toStage, rule: a.rule, evidence: a.evidence, at: a.at.toISOString() })),
    activity,
  };
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** Leads whose email begins with the text typed (at most 50). */
export async function findLeads(ctx: Pick<Context, 'db'>, text: string) {
  const prefix = text.trim().toLowerCase().slice(0, 254);
  if (!prefix) return [];
  return leadsMatching(ctx.db, prefix, 50);
}
