// A person's open or click counts only once it has settled: nothing that can still arrive (a scanner's
// walk over the other links, a gateway's re-check) could change its verdict. A settle job per lead, due
// tracking.settleAfter after the hit arrived, counts what is due; reconcile finds any Redis lost.
import { and, eq, inArray, isNotNull, isNull, lte } from 'drizzle-orm';
import type { SignalKind } from '../advancement/score.js';
import type { Context } from '../context.js';
import { messages, signals } from '../db/schema.js';
import { applyToLead } from './recordSignals.js';

/**
 * Counts a lead's provisional opens and clicks that are due: nothing that can still arrive could change
 * their verdict. Those a burst turned into machines meanwhile were settled then and are not here.
 */
export async function settleSignals(ctx: Context, leadId: string): Promise<{ settled: number }> {
  const settled = await applyToLead(ctx, leadId, async (tx) => {
    const now = ctx.now();
    const due = await tx
      .update(signals)
      .set({ settledAt: now })
      .where(and(eq(signals.leadId, leadId), isNull(signals.settledAt), lte(signals.settlesAt, now)))
      .returning();
    const ids = [...new Set(due.map((d) => d.messageId).filter((x): x is string => !!x))];
    const kinds = ids.length ? await tx.select({ id: messages.id, kind: messages.kind }).from(messages).where(inArray(messages.id, ids)) : [];
    const kindOf = new Map(kinds.map((k) => [k.id, k.kind]));
    return due
      .map(({ id: _id, ...d }) => ({ ...d, kind: d.kind as SignalKind, messageKind: (d.messageId && kindOf.get(d.messageId)) || 'value' }))
      .sort((a, b) => a.occurredAt.getTime() - b.occurredAt.getTime());
  }, 'settled');
  return { settled };
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
