// A person's open or click counts only once it has settled: nothing that can still arrive (a scanner's
// walk over the other links, a gateway's re-check) could change its verdict. A settle job per lead, due
// tracking.settleAfter after the hit arrived, judges each due hit again with every hit on its message
// recorded since, and counts what is still a person; reconcile finds any job Redis lost.
import { and, eq, inArray, isNotNull, isNull, lte, sql } from 'drizzle-orm';
import type { SignalKind } from '../advancement/score.js';
import type { Context } from '../context.js';
import type { Tx } from '../db/client.js';
import { messages, signals } from '../db/schema.js';
import type { HitRequest } from '../engagement/classification.js';
import { applyToLead, type Row } from './recordSignals.js';
import { classifyOptions, clicksOnMessages, judgeHit } from './trackBatch.js';

/** Other hits this long before the earliest due one can still bear on it (a walk, a re-check). */
const LOOK_BACK_MS = 3_600_000;

/**
 * Settles a lead's provisional opens and clicks that are due and whose message has gone quiet: no click on
 * it that arrived within tracking.settleAfter, so no walk over its links can still be going on. Each is
 * judged again with everything recorded on its message, before and after it; what is still a person counts.
 */
export async function settleSignals(ctx: Context, leadId: string): Promise<{ settled: number }> {
  const settled = await applyToLead(ctx, leadId, (tx) => claimDue(ctx, tx, leadId), 'settled');
  return { settled };
}

async function claimDue(ctx: Context, tx: Tx, leadId: string): Promise<Row[]> {
  const now = ctx.now();
  const quiet = sql`not exists (select 1 from ${signals} o where o.message_id = ${signals.messageId} and o.kind = 'click' and o.settles_at > ${now.toISOString()})`;
  const due = await tx
    .select()
    .from(signals)
    .where(and(eq(signals.leadId, leadId), isNull(signals.settledAt), lte(signals.settlesAt, now), quiet))
    .orderBy(signals.occurredAt)
    .for('update');
  if (!due.length) return [];
  const ids = [...new Set(due.map((d) => d.messageId).filter((x): x is string => !!x))];
  const msgs = ids.length ? await tx.select({ id: messages.id, kind: messages.kind, sentAt: messages.sentAt, links: messages.links }).from(messages).where(inArray(messages.id, ids)) : [];
  const msgOf = new Map(msgs.map((m) => [m.id, m]));
  const hitsOf = await clicksOnMessages(tx, ids, new Date(due[0]!.occurredAt.getTime() - LOOK_BACK_MS));
  const opts = classifyOptions(ctx);

  const rows: Row[] = [];
  for (const { id, ...d } of due) {
    const msg = d.messageId ? msgOf.get(d.messageId) : undefined;
    const ev = d.evidence as { userAgent?: string | null; ip?: string | null; method?: string; headers?: Record<string, string>; provider?: string };
    let verdict: { human: boolean; reason: string; evidence?: Record<string, unknown> } = { human: d.human, reason: d.reason };
    // Hits through our own tracking carry their request; a provider's event its agent and address only.
    if (msg && (ev.method || ev.provider)) {
      const request: HitRequest = { userAgent: ev.userAgent ?? null, ip: ev.ip ?? null, method: ev.method ?? 'GET', headers: ev.headers ?? {} };
      const others = (hitsOf.get(msg.id) ?? []).filter((o) => o.signalId !== id);
      verdict = judgeHit({ kind: d.kind as 'open' | 'click', request, at: d.occurredAt, linkId: d.linkId }, msg, others, ev.provider ? { ...opts, headersKnown: false } : opts);
    }
    const evidence = verdict.human ? d.evidence : { ...d.evidence, verdict: verdict.evidence, judgedAgain: 'at settling, with the hits that followed' };
    await tx.update(signals).set({ settledAt: now, human: verdict.human, reason: verdict.reason, evidence }).where(eq(signals.id, id));
    rows.push({ ...d, human: verdict.human, reason: verdict.reason, evidence, settledAt: now, kind: d.kind as SignalKind, messageKind: msg?.kind ?? 'value' });
  }
  return rows;
}

/** Leads with provisional signals past their time: for reconcile, after a crash or a Redis loss. */
export async function leadsToSettle(ctx: Context, limit = 1000): Promise<string[]> {
  const rows = await ctx.db
    .selectDistinct({ leadId: signals.leadId })
    .from(signals)
    .where(and(isNull(signals.settledAt), lte(signals.settlesAt, ctx.now()), isNotNull(signals.leadId)))
    .limit(limit);
  return rows.map((r) => r.leadId!);
}
