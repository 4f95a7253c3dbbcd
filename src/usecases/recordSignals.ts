// Records engagement signals (opens, clicks, replies, bounces, unsubscribes), idempotent on their source
// id, in one multi-row insert; then updates each touched lead once: score, value pieces, suppression,
// its enrollments, and — when the value-first threshold is crossed — its stage.
import { and, eq, gte, inArray } from 'drizzle-orm';
import { CLICK_BURST_WINDOW_SECONDS } from '../engagement/clicks.js';
import { evaluateAdvance } from '../advancement/rules.js';
import { addToScore, valuePieceOf, type SignalKind } from '../advancement/score.js';
import type { Context } from '../context.js';
import type { Tx } from '../db/client.js';
import { logActivity, type ActivityEntry } from '../db/activity.js';
import { loadEngagement, profileOf } from '../db/facts.js';
import { accounts, leads, messages, signals, suppressions } from '../db/schema.js';
import type { EngineEvent } from '../engine/decide.js';
import { enqueueFollowups, noFollowups } from './applyDecision.js';
import { advanceAccount, moveStage } from './advanceLead.js';
import { emitOutbound } from './outbound.js';
import { evaluate } from '../engine/conditions.js';
import { lockLeadWithAccount } from './engineInput.js';
import { notifyEnrollments } from './notifyEnrollments.js';

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

export async function recordSignals(ctx: Context, inputs: SignalInput[]): Promise<{ recorded: number; duplicates: number }> {
  if (!inputs.length) return { recorded: 0, duplicates: 0 };
  const messageIds = [...new Set(inputs.map((i) => i.messageRowId).filter((x): x is string => !!x))];
  const msgRows = messageIds.length
    ? await ctx.db.select({ id: messages.id, leadId: messages.leadId, sequenceId: messages.sequenceId, stepId: messages.stepId, kind: messages.kind }).from(messages).where(inArray(messages.id, messageIds))
    : [];
  const byId = new Map(msgRows.map((m) => [m.id, m]));

  const rows = inputs
    .map((i) => {
      const m = i.messageRowId ? byId.get(i.messageRowId) : undefined;
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
        messageKind: m?.kind ?? 'value',
      };
    })
    .filter((r) => r.leadId !== null)
    // The same hit twice in one burst (a link that appears twice in a message) is one signal.
    .filter(firstOfEach((r) => r.sourceId));

  // Signals that change something are written in the same transaction as their effects (suppression,
  // exits, stage moves): a failure leaves neither, so the provider's retry or the person's second click
  // applies them. Evidence that changes nothing is written in one insert for the whole burst.
  const inert = rows.filter(changesNothing);
  const insertedInert = inert.length ? await insertSignals(ctx.db, inert) : new Set<string>();
  await logInert(ctx, inert.filter((r) => insertedInert.has(r.sourceId)));
  const byLead = new Map<string, typeof rows>();
  for (const r of rows) if (!changesNothing(r)) byLead.set(r.leadId!, [...(byLead.get(r.leadId!) ?? []), r]);
  let recorded = insertedInert.size;
  for (const [leadId, leadSignals] of byLead) recorded += await applyToLead(ctx, leadId, leadSignals);
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

/** Machine opens and clicks, soft bounces and dateless auto-replies are evidence, not engagement: they move nothing. */
function changesNothing(r: Row): boolean {
  // A burst unmasks the clicks before it as a scanner's: those must be taken back.
  if (r.kind === 'click' && r.reason === 'link_burst') return false;
  if (r.kind === 'open' || r.kind === 'click') return !r.human;
  if (r.kind === 'bounce') return r.reason !== 'hard_bounce';
  if (r.kind === 'auto_reply') return typeof r.evidence.returnDate !== 'string';
  return false;
}

/** One query for the names and one insert for the log, however many signals a burst brought. */
async function logInert(ctx: Context, rows: Row[]): Promise<void> {
  if (!rows.length) return;
  const who = await ctx.db
    .select({ id: leads.id, email: leads.email, accountId: accounts.id, accountName: accounts.name })
    .from(leads)
    .innerJoin(accounts, eq(accounts.id, leads.accountId))
    .where(inArray(leads.id, [...new Set(rows.map((r) => r.leadId!))]));
  const byId = new Map(who.map((w) => [w.id, w]));
  await logActivity(
    ctx.db,
    rows.map((r) => {
      const w = byId.get(r.leadId!);
      return { leadId: r.leadId, accountId: w?.accountId ?? null, email: w?.email ?? null, accountName: w?.accountName ?? null, sequenceId: r.sequenceId, stepId: r.stepId, kind: r.kind, detail: describeSignal(r, null), data: { sourceId: r.sourceId, human: r.human, reason: r.reason }, at: r.occurredAt };
    }),
  );
}

type Row = {
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
  messageKind: string;
};

/** Applies one lead's new signals; returns how many were new (a redelivery applies nothing twice). */
async function applyToLead(ctx: Context, leadId: string, all: Row[]): Promise<number> {
  const { funnel } = ctx.config;
  const out = noFollowups();
  let fresh = 0;
  await ctx.db.transaction(async (tx) => {
    const la = await lockLeadWithAccount(tx, leadId);
    if (!la) return;
    const inserted = await insertSignals(tx, all);
    const rows = all.filter((r) => inserted.has(r.sourceId));
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

    for (const r of rows) {
      // Engagement counts toward the stage it happened in; a late pixel from before an advance does not.
      const inStage = r.occurredAt >= lead.stageEnteredAt;
      const piece = r.kind === 'click' && r.human ? valuePieceOf(r.tag, r.messageKind, r.sequenceId, r.stepId) : null;
      if (inStage) scoreBase = addToScore(funnel, scoreBase, { kind: r.kind, human: r.human, valuePiece: piece, at: r.occurredAt });
      if (inStage && piece) pieces.add(piece);
      if (r.kind === 'reply' && r.human) {
        if (inStage) repliedAt = repliedAt && repliedAt < r.occurredAt ? repliedAt : r.occurredAt;
        events.push({ type: 'replied' });
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
        const later = rows.slice(rows.indexOf(r) + 1);
        scoreBase = await takeBackBurst(ctx, tx, lead, r, scoreBase, pieces, later);
      }
      if (r.human && (r.kind === 'open' || r.kind === 'click')) events.push({ type: 'engaged' });
      log.push({ ...base, sequenceId: r.sequenceId, stepId: r.stepId, kind: r.kind, detail: describeSignal(r, piece), data: { sourceId: r.sourceId, human: r.human, reason: r.reason }, at: r.occurredAt });
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
 * A click that completes a burst (every link of a message within seconds) shows the earlier clicks of
 * the burst were the same scanner's, though each looked like a person on its own. They are marked
 * machine, their points taken back, and value pieces no person engaged with are dropped again.
 */
async function takeBackBurst(ctx: Context, tx: Tx, lead: { id: string; stageEnteredAt: Date }, burst: Row, scoreBase: number, pieces: Set<string>, later: Row[]): Promise<number> {
  const { funnel } = ctx.config;
  const since = new Date(burst.occurredAt.getTime() - CLICK_BURST_WINDOW_SECONDS * 1000);
  const flipped = await tx
    .update(signals)
    .set({ human: false, reason: 'link_burst' })
    .where(and(eq(signals.messageId, burst.messageId!), eq(signals.kind, 'click'), eq(signals.human, true), gte(signals.occurredAt, since)))
    .returning({ sourceId: signals.sourceId, tag: signals.tag, occurredAt: signals.occurredAt });
  if (!flipped.length) return scoreBase;
  let score = scoreBase;
  const notYetCounted = new Map(later.map((r) => [r.sourceId, r]));
  for (const f of flipped) {
    // A click of this same batch not yet counted is simply counted as the machine it is.
    const pending = notYetCounted.get(f.sourceId);
    if (pending) {
      pending.human = false;
      pending.reason = 'link_burst';
      continue;
    }
    if (f.occurredAt < lead.stageEnteredAt) continue;
    const piece = valuePieceOf(f.tag, burst.messageKind, burst.sequenceId, burst.stepId);
    score -= addToScore(funnel, 0, { kind: 'click', human: true, valuePiece: piece, at: f.occurredAt });
  }
  // Keep only the pieces a person still engaged with in this stage.
  const kept = await tx
    .select({ tag: signals.tag, sequenceId: signals.sequenceId, stepId: signals.stepId, kind: messages.kind })
    .from(signals)
    .leftJoin(messages, eq(messages.id, signals.messageId))
    .where(and(eq(signals.leadId, lead.id), eq(signals.kind, 'click'), eq(signals.human, true), gte(signals.occurredAt, lead.stageEnteredAt)));
  const still = new Set(kept.map((k) => valuePieceOf(k.tag, k.kind ?? 'value', k.sequenceId, k.stepId)).filter((p): p is string => !!p));
  for (const p of [...pieces]) if (!still.has(p)) pieces.delete(p);
  await logActivity(tx, [{ leadId: lead.id, sequenceId: burst.sequenceId, stepId: burst.stepId, kind: 'reclassified', detail: `${flipped.length} earlier click(s) were part of a scanner's burst: now machine, not counted` }]);
  return score;
}

function describeSignal(r: Row, piece: string | null): string {
  const who = r.human ? 'human' : `machine (${r.reason})`;
  switch (r.kind) {
    case 'open':
      return `opened — ${who}`;
    case 'click':
      return `clicked ${r.linkId ?? 'a link'}${piece ? ` [value ${piece}]` : ''} — ${who}`;
    case 'reply':
      return 'replied';
    case 'auto_reply':
      return `auto-reply (${r.reason})${r.evidence.returnDate ? `, back ${String(r.evidence.returnDate).slice(0, 10)}` : ''}`;
    default:
      return `${r.kind} (${r.reason})`;
  }
}
