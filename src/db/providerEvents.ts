// Queries for email service providers' events: finding the message an event names, remembering the
// provider's id for a message, and what an SNS message was answered (delivery notes are logged once by logActivityOnce).
import { eq, sql, type SQL } from 'drizzle-orm';
import { logActivity, type ActivityEntry } from './activity.js';
import type { Tx } from './client.js';
import { anyText, anyUuid } from './params.js';
import { leads, messages, webhookReceipts } from './schema.js';

export interface MessageForEvent {
  id: string;
  messageId: string;
  providerMessageId: string | null;
  leadId: string;
  toAddress: string;
  sentAt: Date | null;
  sequenceId: string;
  stepId: string;
  links: { id: string; url: string; tag: string | null }[];
}

/**
 * Messages named by any of the row ids, provider message ids (keys) or our Message-IDs, in one query.
 * Each list travels as one array parameter, not one parameter a value (a batch of 500 events names some
 * 1,500: drizzle checked and wrapped each one), and the rows are read raw: no column needs decoding but
 * sent_at, which crosses as text (see db/signals.ts).
 */
export async function messagesForEvents(db: Tx, by: { rowIds: string[]; providerKeys: string[]; messageIds: string[] }): Promise<MessageForEvent[]> {
  const any: SQL[] = [];
  if (by.rowIds.length) any.push(anyUuid(messages.id, by.rowIds));
  if (by.providerKeys.length) any.push(anyText(messages.providerMessageId, by.providerKeys));
  if (by.messageIds.length) any.push(anyText(messages.messageId, by.messageIds));
  if (!any.length) return [];
  const rows = await db.execute<Omit<MessageForEvent, 'sentAt'> & { sentAt: string | Date | null }>(sql`
    select id, message_id as "messageId", provider_message_id as "providerMessageId", lead_id as "leadId", to_address as "toAddress",
      sent_at as "sentAt", sequence_id as "sequenceId", step_id as "stepId", links
    from messages
    where ${sql.join(any, sql` or `)}`);
  const out: MessageForEvent[] = [];
  for (const r of rows) {
    out.push({
      id: r.id,
      messageId: r.messageId,
      providerMessageId: r.providerMessageId,
      leadId: r.leadId,
      toAddress: r.toAddress,
      sentAt: r.sentAt === null ? null : new Date(r.sentAt),
      sequenceId: r.sequenceId,
      stepId: r.stepId,
      links: r.links,
    });
  }
  return out;
}

/** The leads with these addresses, by address (the fallback for events that name none of our messages). */
export async function leadIdsByEmail(db: Tx, emails: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (!emails.length) return out;
  const rows = await db.execute<{ id: string; email: string }>(sql`select id, email from leads where ${anyText(leads.email, emails)}`);
  for (const r of rows) out.set(r.email, r.id);
  return out;
}

/**
 * The provider's id for a message, learnt from the first event that named the message another way.
 * Only fills an empty column: the id the relay's 250 gave at send time, or an earlier event's, stays.
 * Writes no log line: it records nothing that happened.
 */
export async function rememberProviderMessageIds(db: Tx, pairs: { messageRowId: string; providerMessageId: string }[]): Promise<void> {
  if (!pairs.length) return;
  // One statement for the batch: a provider's first batch after a send teaches an id for most of its
  // messages. The rows are locked in id order, and one another batch is teaching meanwhile is left to it:
  // two batches naming the same messages in different orders would otherwise deadlock.
  await db.execute(sql`
    with x as (select * from jsonb_to_recordset(${JSON.stringify(pairs)}::jsonb) as x("messageRowId" uuid, "providerMessageId" text)),
      taken as (select m.id from messages m join x on x."messageRowId" = m.id where m.provider_message_id is null order by m.id for no key update of m skip locked)
    update messages m set provider_message_id = x."providerMessageId"
    from x join taken on taken.id = x."messageRowId"
    where m.id = x."messageRowId"`);
}

/** Whether an SNS message (by its MessageId) was already handled, and what was answered then. */
export async function priorSnsAnswer(db: Tx, snsMessageId: string): Promise<unknown | null> {
  const [r] = await db.select({ response: webhookReceipts.response }).from(webhookReceipts).where(eq(webhookReceipts.id, `sns:${snsMessageId}`));
  return r?.response ?? null;
}

/** Records the answer to an SNS message once handled; a second record of the same message keeps the first. */
export async function rememberSnsAnswer(db: Tx, snsMessageId: string, response: Record<string, unknown>, log: ActivityEntry[]): Promise<void> {
  await db.transaction(async (tx) => {
    const r = await tx.insert(webhookReceipts).values({ id: `sns:${snsMessageId}`, response }).onConflictDoNothing().returning({ id: webhookReceipts.id });
    if (r.length) await logActivity(tx, log);
  });
}
