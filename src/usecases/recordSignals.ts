// Records engagement signals (opens, clicks, replies, bounces, unsubscribes), idempotent on their source
// id, in one multi-row insert; then updates each touched lead once: score, value pieces, suppression,
// its enrollments, and — when the value-first threshold is crossed — its stage.
//
// A human-looking open or click is provisional: a scanner's walk over the message's links or a gateway's
// re-check can still arrive and show it was a machine. It is recorded at once (as evidence, in the log) but
// counts for nothing until it settles (settleSignals, scheduled for tracking.settleAfter after it arrived).
import { and, eq, gte, inArray, isNotNull, lte, or } from 'drizzle-orm';
import { CLICK_BURST_WINDOW_SECONDS } from '../engagement/clicks.js';
import { GATEWAY_RENDER_WINDOW_SECONDS } from '../engagement/opens.js';
import { parseDuration } from '../config/duration.js';
import { evaluateAdvance } from '../advancement/rules.js';
import { addToScore, valuePieceOf, type SignalKind } from '../advancement/score.js';
import type { Context } from '../context.js';
import type { Tx } from '../db/client.js';
import { logActivity, type ActivityEntry } from '../db/activity.js';
import { loadEngagement, profileOf } from '../db/facts.js';
import { leads, messages, signals, suppressions } from '../db/schema.js';
import type { EngineEvent } from '../engine/decide.js';
import { enqueueFollowups, noFollowups } from './applyDecision.js';
import { advanceAccount, moveStage } from './advanceLead.js';
import { emitOutbound } from './outbound.js';
import { evaluate } from '../engine/conditions.js';
import { lockLeadWithAccount } from './engineInput.js';
import { notifyEnrollments } from './notifyEnrollments.js';
import { enqueueSettles } from '../queue/index.js';
import { insertInertSignals, loadHitFacts, loadLeadNames, type HitFacts, type InertSignal, type LeadName } from '../db/signals.js';

export interface SignalInput {
  /** Idempotency key: the same hit, reply or provider event twice is recorded once. */
  sourceId: string;
  kind: SignalKind;
  messageRowId?: string | null;
  leadId?: string | null;
  human: boolean;
  reason: string;
  linkId?: string | null;
  tag?: string | null;
  at: Date;
  evidence?: Record<string, unknown>;
  /** An out-of-office's return date: the lead's sequences wait until then. */
  returnDate?: Date | null;
}

/**
 * `known`: the messages the caller already loaded (trackHits loads them, with their leads, to judge the
 * hits); only the others are looked up, with their leads and accounts, in one query.
 */
export async function recordSignals(ctx: Context, inputs: SignalInput[], known?: Map<string, HitFacts>): Promise<{ recorded: number; duplicates: number }> {
  if (!inputs.length) return { recorded: 0, duplicates: 0 };
  const missing = [...new Set(inputs.map((i) => i.messageRowId).filter((x): x is string => !!x && !known?.has(x)))];
  const loaded = missing.length ? await loadHitFacts(ctx.database.sql, missing, null) : null;
  const byId = known && loaded ? new Map([...known, ...loaded]) : (known ?? loaded ?? new Map<string, HitFacts>());

  const now = ctx.now();
  const settleAfterMs = parseDuration(ctx.config.funnel.tracking.settleAfter);
  const rows = inputs
    .map((i): Row => {
      const m = i.messageRowId ? byId.get(i.messageRowId) : undefined;
      const provisional = i.human && (i.kind === 'open' || i.kind === 'click');
      return {
        sourceId: i.sourceId,
        leadId: i.leadId ?? m?.leadId ?? null,
        messageId: m?.id ?? null,
        sequenceId: m?.sequenceId ?? null,
        stepId: m?.stepId ?? null,
        kind: i.kind,
        human: i.human,
        reason: i.reason,
        linkId: i.linkId ?? null,
        tag: i.tag ?? null,
        occurredAt: i.at,
        evidence: { ...(i.evidence ?? {}), ...(i.returnDate ? { returnDate: i.returnDate.toISOString() } : {}) },
        settledAt: provisional ? null : now,
        // From when it reached us, not when it happened: a late-delivered provider event still waits its turn.
        // Every click has one, a machine's too: while a walk may still go on, its message is not quiet, and
        // the person-like hits on it wait (settleSignals).
        settlesAt: provisional || i.kind === 'click' ? new Date(Math.max(i.at.getTime(), now.getTime()) + settleAfterMs) : null,
        messageKind: m?.kind ?? 'value',
      };
    })
    .filter((r) => r.leadId !== null)
    // The same hit twice in one burst (a link that appears twice in a message) is one signal.
    .filter(firstOfEach((r) => r.sourceId));

  // Signals that change something are written in the same transaction as their effects (suppression,
  // exits, stage moves): a failure leaves neither, so the provider's retry or the person's second click
  // applies them. Evidence that changes nothing yet (machines, provisional hits) is written in one insert.
  // Each with its log line, in one statement: a signal is never stored without the line that reports it.
  const inert = rows.filter(changesNothing);
  const insertedInert = inert.length ? await insertInertSignals(ctx.database.sql, await withLogLines(ctx, inert, byId)) : new Set<string>();
  const fresh = inert.filter((r) => insertedInert.has(r.sourceId));
  // Crash here and reconcile finds the provisional rows and settles them all the same. A machine click
  // schedules one too: it may have held back the person-like hits on its message past their own jobs.
  await enqueueSettles(ctx.queues, fresh.filter((r) => r.settlesAt).map((r) => ({ job: { leadId: r.leadId! }, at: r.settlesAt! })), now);
  const byLead = new Map<string, typeof rows>();
  for (const r of rows) if (!changesNothing(r)) byLead.set(r.leadId!, [...(byLead.get(r.leadId!) ?? []), r]);
  let recorded = insertedInert.size;
  for (const [leadId, leadSignals] of byLead) recorded += await applyToLead(ctx, leadId, async (tx) => {
    const inserted = await insertSignals(tx, leadSignals);
    return leadSignals.filter((r) => inserted.has(r.sourceId));
  });
  return { recorded, duplicates: inputs.length - recorded };
}

async function insertSignals(tx: Tx, rows: Row[]): Promise<Set<string>> {
  const inserted = await tx
    .insert(signals)
    .values(rows.map(({ messageKind: _k, ...r }) => r))
    .onConflictDoNothing({ target: signals.sourceId })
    .returning({ sourceId: signals.sourceId });
  return new Set(inserted.map((r) => r.sourceId));
}

function firstOfEach<T>(key: (x: T) => string): (x: T) => boolean {
  const seen = new Set<string>();
  return (x) => !seen.has(key(x)) && !!seen.add(key(x));
}

/** Machine and provisional opens and clicks, soft bounces and dateless auto-replies move nothing when they arrive. */
function changesNothing(r: Row): boolean {
  // A burst unmasks the hits around it as a scanner's: those must be taken back.
  if (r.kind === 'click' && r.reason === 'link_burst') return false;
  // Machines never count; a person's open or click counts once it settles.
  if (r.kind === 'open' || r.kind === 'click') return true;
  if (r.kind === 'bounce') return r.reason !== 'hard_bounce';
  // Someone else answering the lead's mail moves nobody: a colleague not yet in nurture, or a stranger.
  if (r.kind === 'reply') return r.reason === 'new_colleague_reply' || r.reason === 'stranger_reply';
  if (r.kind === 'auto_reply') return typeof r.evidence.returnDate !== 'string';
  return false;
}

/** The log line of each inert signal; the names of leads no message named come from one query. */
async function withLogLines(ctx: Context, rows: Row[], messagesById: Map<string, HitFacts>): Promise<InertSignal[]> {
  const nameOf = (r: Row) => {
    const m = r.messageId ? messagesById.get(r.messageId) : undefined;
    return m && m.leadId === r.leadId ? m : undefined;
  };
  const unnamed = [...new Set(rows.filter((r) => !nameOf(r)).map((r) => r.leadId!))];
  const names = unnamed.length ? await loadLeadNames(ctx.database.sql, unnamed) : new Map<string, LeadName>();
  return rows.map(({ messageKind: _k, ...r }) => {
    const w = nameOf(r as Row) ?? names.get(r.leadId!);
    const detail = describeSignal(r as Row, null, r.settledAt ? 'final' : 'provisional');
    return { ...r, leadId: r.leadId!, log: { accountId: w?.accountId ?? null, email: w?.email ?? null, accountName: w?.accountName ?? null, detail, data: { sourceId: r.sourceId, human: r.human, reason: r.reason, provisional: !r.settledAt } } };
  });
}

export type Row = {
  sourceId: string;
  leadId: string | null;
  messageId: string | null;
  sequenceId: string | null;
  stepId: string | null;
  kind: SignalKind;
  human: boolean;
  reason: string;
  tag: string | null;
  linkId: string | null;
  occurredAt: Date;
  evidence: Record<string, unknown>;
  settledAt: Date | null;
  settlesAt: Date | null;
  messageKind: string;
};

/**
 * Applies one lead's signals under its lock: those `claim` writes (new ones inserted, or provisional ones
 * settled) and returns; a redelivery claims nothing and applies nothing twice. Returns how many applied.
 */
export async function applyToLead(ctx: Context, leadId: string, claim: (tx: Tx) => Promise<Row[]>, phase: Phase = 'final'): Promise<number> {
  const { funnel } = ctx.config;
  const out = noFollowups();
  let fresh = 0;
  await ctx.db.transaction(async (tx) => {
    const la = await lockLeadWithAccount(tx, leadId);
    if (!la) return;
    const rows = await claim(tx);
    fresh = rows.length;
    if (!rows.length) return;
    let { lead } = la;
    const { account } = la;
    const base = { leadId: lead.id, accountId: account.id, email: lead.email, accountName: account.name };
    let scoreBase = lead.scoreBase;
    const pieces = new Set(lead.valuePieces);
    let repliedAt = lead.repliedAt;
    let status = lead.status;
    const events: EngineEvent[] = [];
    const log: ActivityEntry[] = [];
    const replies: Record<string, unknown>[] = [];

    for (const r of rows) {
      // Engagement counts toward the stage it happened in; a late pixel from before an advance does not.
      const inStage = r.occurredAt >= lead.stageEnteredAt;
      const piece = r.kind === 'click' && r.human ? valuePieceOf(r.tag, r.messageKind, r.sequenceId, r.stepId) : null;
      if (inStage) scoreBase = addToScore(funnel, scoreBase, { kind: r.kind, human: r.human, valuePiece: piece, at: r.occurredAt });
      if (inStage && piece) pieces.add(piece);
      if (r.kind === 'reply' && r.human) {
        if (inStage) repliedAt = repliedAt && repliedAt < r.occurredAt ? repliedAt : r.occurredAt;
        events.push({ type: 'replied' });
        // The rep hears at once, with what the person wrote (the quoted history left out).
        replies.push({ at: r.occurredAt.toISOString(), subject: r.evidence.subject ?? null, text: r.evidence.newText ?? null, from: r.evidence.from ?? lead.email, sequence: r.sequenceId, step: r.stepId });
      }
      if (r.kind === 'unsubscribe' || r.kind === 'complaint') {
        status = r.kind === 'unsubscribe' ? 'unsubscribed' : 'complained';
        await tx.insert(suppressions).values({ email: lead.email, reason: r.kind, source: r.reason }).onConflictDoNothing();
        events.push({ type: 'unsubscribed' });
      }
      if (r.kind === 'bounce' && r.reason === 'hard_bounce') {
        status = 'bounced';
        await tx.insert(suppressions).values({ email: lead.email, reason: 'hard_bounce', source: String(r.evidence.smtp ?? r.reason) }).onConflictDoNothing();
        events.push({ type: 'bounced' });
      }
      if (r.kind === 'auto_reply' && typeof r.evidence.returnDate === 'string') {
        events.push({ type: 'postpone', until: new Date(r.evidence.returnDate), why: 'out of office' });
      }
      if (r.kind === 'click' && r.reason === 'link_burst' && r.messageId) {
        scoreBase = await takeBackBurst(ctx, tx, lead, r, scoreBase, pieces);
      }
      if (r.human && (r.kind === 'open' || r.kind === 'click')) events.push({ type: 'engaged' });
      log.push({ ...base, sequenceId: r.sequenceId, stepId: r.stepId, kind: r.kind, detail: describeSignal(r, piece, phase), data: { sourceId: r.sourceId, human: r.human, reason: r.reason }, at: r.occurredAt });
    }

    [lead] = (await tx
      .update(leads)
      .set({ scoreBase, valuePieces: [...pieces].sort(), repliedAt, status, updatedAt: ctx.now() })
      .where(eq(leads.id, lead.id))
      .returning()) as [typeof lead];
    await logActivity(tx, log);

    // Exits first (reply, unsubscribe, bounce), then gates and postponements for whatever still runs.
    const order: EngineEvent['type'][] = ['unsubscribed', 'bounced', 'replied', 'postpone', 'engaged'];
    const seen = new Set<string>();
    for (const type of order) {
      for (const ev of events.filter((e) => e.type === type)) {
        if (type !== 'postpone' && seen.has(type)) continue;
        seen.add(type);
        await notifyEnrollments(ctx, tx, lead, account, ev, out);
      }
    }

    for (const reply of replies) {
      await emitOutbound(ctx, tx, 'lead.replied', { lead: { id: lead.id, email: lead.email, owner: lead.owner }, account: { id: account.id, name: account.name }, reply }, out);
    }
    if (status !== la.lead.status && (status === 'unsubscribed' || status === 'complained' || status === 'bounced')) {
      await emitOutbound(ctx, tx, status === 'bounced' ? 'lead.bounced' : 'lead.unsubscribed', { lead: { id: lead.id, email: lead.email }, account: { id: account.id, name: account.name }, reason: status }, out);
    }
    if (lead.status !== 'active') return;
    const engagement = await loadEngagement(tx, funnel, lead, ctx.now());
    const profile = profileOf(lead, account);
    if (!lead.engagedAt && evaluate(funnel.accounts.engagedWhen, engagement, profile).met) {
      [lead] = (await tx.update(leads).set({ engagedAt: ctx.now() }).where(eq(leads.id, lead.id)).returning()) as [typeof lead];
    }
    const advance = evaluateAdvance(funnel, lead.stage, engagement, profile);
    if (advance) await moveStage(ctx, tx, lead, account, advance.to, advance.rule, advance.evidence, out);
    await advanceAccount(ctx, tx, account, out);
  });
  await enqueueFollowups(ctx, out);
  return fresh;
}

/**
 * A click that completes a burst (every link of a message within seconds) shows the hits around it were
 * the same scanner's, though each looked like a person on its own: the other clicks, and the pixel a
 * gateway fetched as it rendered the message. They become machine and final. Hits still provisional
 * never counted; one that had already settled (it reached us unusually late) has its points taken back,
 * and value pieces no person engaged with are dropped again.
 */
async function takeBackBurst(ctx: Context, tx: Tx, lead: { id: string; stageEnteredAt: Date }, burst: Row, scoreBase: number, pieces: Set<string>): Promise<number> {
  const { funnel } = ctx.config;
  const around = (kind: 'open' | 'click', seconds: number) =>
    and(
      eq(signals.kind, kind),
      gte(signals.occurredAt, new Date(burst.occurredAt.getTime() - seconds * 1000)),
      lte(signals.occurredAt, new Date(burst.occurredAt.getTime() + seconds * 1000)),
    );
  const near = and(
    eq(signals.messageId, burst.messageId!),
    eq(signals.human, true),
    or(around('click', CLICK_BURST_WINDOW_SECONDS), around('open', GATEWAY_RENDER_WINDOW_SECONDS)),
  );
  const before = await tx.select({ id: signals.id, kind: signals.kind, tag: signals.tag, occurredAt: signals.occurredAt, settledAt: signals.settledAt }).from(signals).where(near).for('update');
  if (!before.length) return scoreBase;
  const now = ctx.now();
  for (const kind of ['click', 'open'] as const) {
    const ids = before.filter((b) => b.kind === kind).map((b) => b.id);
    if (ids.length) await tx.update(signals).set({ human: false, reason: kind === 'click' ? 'link_burst' : 'gateway_render', settledAt: now }).where(inArray(signals.id, ids));
  }
  let score = scoreBase;
  const counted = before.filter((b) => b.settledAt && b.occurredAt >= lead.stageEnteredAt);
  for (const f of counted) {
    const piece = f.kind === 'click' ? valuePieceOf(f.tag, burst.messageKind, burst.sequenceId, burst.stepId) : null;
    score -= addToScore(funnel, 0, { kind: f.kind as SignalKind, human: true, valuePiece: piece, at: f.occurredAt });
  }
  if (counted.some((c) => c.kind === 'click')) {
    // Keep only the pieces a person still engaged with in this stage.
    const kept = await tx
      .select({ tag: signals.tag, sequenceId: signals.sequenceId, stepId: signals.stepId, kind: messages.kind })
      .from(signals)
      .leftJoin(messages, eq(messages.id, signals.messageId))
      .where(and(eq(signals.leadId, lead.id), eq(signals.kind, 'click'), eq(signals.human, true), isNotNull(signals.settledAt), gte(signals.occurredAt, lead.stageEnteredAt)));
    const still = new Set(kept.map((k) => valuePieceOf(k.tag, k.kind ?? 'value', k.sequenceId, k.stepId)).filter((p): p is string => !!p));
    for (const p of [...pieces]) if (!still.has(p)) pieces.delete(p);
  }
  const what = `${before.length} hit(s) around it were part of a scanner's burst: now machine, never counted${counted.length ? ` (${counted.length} already counted, taken back)` : ''}`;
  await logActivity(tx, [{ leadId: lead.id, sequenceId: burst.sequenceId, stepId: burst.stepId, kind: 'reclassified', detail: what }]);
  return score;
}

type Phase = 'provisional' | 'settled' | 'final';

function describeSignal(r: Row, piece: string | null, phase: Phase): string {
  // A provisional verdict says so: it counts only if no scanner's burst or re-check follows.
  const who = !r.human ? `machine (${r.reason})` : phase === 'provisional' ? 'looks human, counts once settled' : phase === 'settled' ? 'human, settled and counted' : 'human';
  switch (r.kind) {
    case 'open':
      return `opened — ${who}`;
    case 'click':
      return `clicked ${r.linkId ?? 'a link'}${piece ? ` [value ${piece}]` : ''} — ${who}`;
    case 'reply':
      if (r.reason === 'colleague_reply') return `replied in a thread sent to a colleague (${String(r.evidence.from ?? '')} answered mail to another lead)`;
      if (r.reason === 'new_colleague_reply') return `${String(r.evidence.from ?? 'someone')} at this account replied, not yet in nurture: a new person to nurture (not counted for this lead)`;
      if (r.reason === 'stranger_reply') return `a reply from ${String(r.evidence.from ?? 'an unknown sender')}, outside the account: recorded, moves no one`;
      return 'replied';
    case 'auto_reply':
      return `auto-reply (${r.reason})${r.evidence.returnDate ? `, back ${String(r.evidence.returnDate).slice(0, 10)}` : ''}`;
    default:
      return `${r.kind} (${r.reason})`;
  }
}
