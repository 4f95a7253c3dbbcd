// Telling the user's CRM what happened: an outbox row per subscribed webhook, written in the same
// transaction as the change it reports, then POSTed (Standard Webhooks-signed) with retries.
import { eq, isNull, sql } from 'drizzle-orm';
import type { OutboundEventType } from '../config/schema.js';
import type { Context } from '../context.js';
import type { Tx } from '../db/client.js';
import { outboundEvents } from '../db/schema.js';
import { signedHeaders } from '../webhooks/signing.js';
import type { OutboundJob } from '../queue/index.js';
import type { Followups } from './applyDecision.js';

export async function emitOutbound(ctx: Context, tx: Tx, type: OutboundEventType, data: Record<string, unknown>, out: Followups): Promise<void> {
  const hooks = ctx.config.funnel.webhooks.filter((w) => w.events.includes(type));
  if (!hooks.length) return;
  const timestamp = ctx.now().toISOString();
  const rows = await tx
    .insert(outboundEvents)
    .values(hooks.map((w) => ({ type, payload: { url: w.url, body: { type, timestamp, data } } })))
    .returning({ id: outboundEvents.id });
  out.outbound.push(...rows.map((r) => ({ eventId: r.id })));
}

/** Delivers one outbox row; throws (and BullMQ retries) until the CRM answers 2xx. */
export async function deliverOutbound(ctx: Context, job: OutboundJob): Promise<'delivered' | 'already'> {
  const [row] = await ctx.db.select().from(outboundEvents).where(eq(outboundEvents.id, job.eventId));
  if (!row || row.deliveredAt) return 'already';
  const { url, body } = row.payload as { url: string; body: unknown };
  const text = JSON.stringify(body);
  let error: string | null = null;
  try {
    // The event id is the webhook-id on every attempt, so the receiver can drop redeliveries.
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'nurture-webhooks', ...signedHeaders(ctx.settings.outboundSecret, text, { id: `evt_${row.id}`, at: ctx.now() }) },
      body: text,
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) error = `HTTP ${res.status}`;
  } catch (err) {
    error = err instanceof Error ? err.message : String(err);
  }
  await ctx.db
    .update(outboundEvents)
    .set(
      error
        ? { attempts: sql`${outboundEvents.attempts} + 1`, lastError: error }
        : // An erasure's event names the person only until the CRM has it: then nothing of them stays here.
          { attempts: sql`${outboundEvents.attempts} + 1`, deliveredAt: ctx.now(), lastError: null, ...(row.type === 'lead.erased' ? { payload: { url, body: { type: row.type, redacted: true } } } : {}) },
    )
    .where(eq(outboundEvents.id, row.id));
  if (error) throw new Error(`webhook to ${url} failed: ${error}`);
  return 'delivered';
}

export async function pendingOutbound(ctx: Context): Promise<OutboundJob[]> {
  const rows = await ctx.db.select({ id: outboundEvents.id }).from(outboundEvents).where(isNull(outboundEvents.deliveredAt)).limit(10_000);
  return rows.map((r) => ({ eventId: r.id }));
}
