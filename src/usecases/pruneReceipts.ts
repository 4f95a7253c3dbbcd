// webhook_receipts only has to remember a delivery for as long as the same one can arrive again; past
// that, a row is dead weight. Pruned by the maintenance job (reconcile), a bounded batch at a time.
import { sql } from 'drizzle-orm';
import type { Context } from '../context.js';

/**
 * Longer than any sender retries one delivery: Standard Webhooks senders (Svix) give up after about a day
 * and a half, SendGrid after 72 hours, SNS after an hour (older SNS messages are refused anyway). A
 * redelivery within this window still gets the first answer.
 */
export const RECEIPT_RETENTION_MS = 7 * 86_400_000;
const BATCH = 5000;

/** Deletes receipts older than the retention window; returns how many. */
export async function pruneWebhookReceipts(ctx: Context, retentionMs = RECEIPT_RETENTION_MS): Promise<number> {
  const cutoff = new Date(ctx.now().getTime() - retentionMs);
  let pruned = 0;
  // Batches keep each delete short, so a first prune of a large table never holds locks for long.
  for (let i = 0; i < 100; i++) {
    const rows = await ctx.db.execute(sql`delete from webhook_receipts where id in (select id from webhook_receipts where received_at < ${cutoff.toISOString()} limit ${BATCH})`);
    const n = (rows as unknown as { count?: number }).count ?? 0;
    pruned += n;
    if (n < BATCH) break;
  }
  return pruned;
}
