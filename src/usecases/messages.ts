// Messages a person looks at and decides about: list them by status, and settle an `uncertain` one —
// resend it (back to queued, same Message-ID) or record that it did arrive.
import { and, asc, eq, inArray } from 'drizzle-orm';
import type { Context } from '../context.js';
import { logActivity } from '../db/activity.js';
import { accounts, leads, messages } from '../db/schema.js';
import { enqueueSends, sendJobId } from '../queue/index.js';

export const MESSAGE_STATUSES = ['queued', 'sending', 'sent', 'bounced', 'failed', 'uncertain', 'held', 'cancelled'] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

export interface MessageSummary {
  id: string;
  status: string;
  email: string;
  accountName: string | null;
  sequenceId: string;
  stepId: string;
  subject: string | null;
  messageId: string;
  attempts: number;
  queuedAt: Date;
  /** When it was last handed to the relay. */
  sendingAt: Date | null;
  sentAt: Date | null;
  /** The relay's last words: its reply, or the error the send ended on. */
  lastReply: string | null;
}

/** Only what the use cases below touch: the CLI builds this without loading configuration or SMTP. */
export type MessagesContext = Pick<Context, 'db' | 'queues' | 'now'>;

export class MessageActionError extends Error {
  constructor(readonly code: 'unknown_message' | 'not_uncertain', message: string) {
    super(message);
    this.name = 'MessageActionError';
  }
}

export async function listMessages(ctx: Pick<Context, 'db'>, o: { status?: MessageStatus | MessageStatus[]; ids?: string[]; limit?: number }): Promise<MessageSummary[]> {
  const statuses = o.status === undefined ? null : Array.isArray(o.status) ? o.status : [o.status];
  const rows = await ctx.db
    .select({ m: messages, email: leads.email, accountName: accounts.name })
    .from(messages)
    .innerJoin(leads, eq(leads.id, messages.leadId))
    .innerJoin(accounts, eq(accounts.id, leads.accountId))
    .where(and(statuses ? inArray(messages.status, statuses) : undefined, o.ids ? inArray(messages.id, o.ids) : undefined))
    .orderBy(asc(messages.sendingAt), asc(messages.queuedAt))
    .limit(o.limit ?? 500);
  return rows.map(({ m, email, accountName }) => ({
    id: m.id,
    status: m.status,
    email,
    accountName,
    sequenceId: m.sequenceId,
    stepId: m.stepId,
    subject: m.subject,
    messageId: m.messageId,
    attempts: m.attempts,
    queuedAt: m.queuedAt,
    sendingAt: m.sendingAt,
    sentAt: m.sentAt,
    lastReply: m.error ?? m.relayResponse,
  }));
}

export type ReleaseDecision = 'resend' | 'mark_sent';

/**
 * A person's decision about an `uncertain` message. `resend` puts it back in the queue with the same
 * Message-ID (so a copy that did arrive threads with, or is deduplicated against, the new one);
 * `mark_sent` records it as delivered, as of when it was handed to the relay.
 */
export async function releaseUncertain(ctx: MessagesContext, messageRowId: string, decision: ReleaseDecision, by = 'a person'): Promise<MessageSummary> {
  const [before] = await ctx.db
    .select({ m: messages, email: leads.email, accountId: leads.accountId })
    .from(messages)
    .innerJoin(leads, eq(leads.id, messages.leadId))
    .where(eq(messages.id, messageRowId));
  if (!before) throw new MessageActionError('unknown_message', `no message ${messageRowId}`);
  if (before.m.status !== 'uncertain') throw new MessageActionError('not_uncertain', `message ${messageRowId} is ${before.m.status}, not uncertain: only an uncertain message waits for a decision`);
  const m = before.m;
  const now = ctx.now();
  const changed = await ctx.db.transaction(async (tx) => {
    const set = decision === 'resend' ? { status: 'queued', sendingAt: null, error: `resent by ${by} after an uncertain send` } : { status: 'sent', sentAt: m.sendingAt ?? now };
    const r = await tx.update(messages).set(set).where(and(eq(messages.id, m.id), eq(messages.status, 'uncertain'))).returning({ id: messages.id });
    if (!r.length) return false;
    await logActivity(tx, [
      {
        leadId: m.leadId,
        accountId: before.accountId,
        email: before.email,
        sequenceId: m.sequenceId,
        stepId: m.stepId,
        kind: decision === 'resend' ? 'queued' : 'sent',
        detail: decision === 'resend' ? `resend requested by ${by} (was uncertain)` : `marked sent by ${by} (was uncertain)`,
        data: { messageRowId: m.id, decision },
      },
    ]);
    return true;
  });
  if (!changed) throw new MessageActionError('not_uncertain', `message ${messageRowId} was settled by someone else just now`);
  if (decision === 'resend') {
    // The first send's job may still be kept (failed or completed): it holds the deterministic id, so it goes first.
    await ctx.queues.send.remove(sendJobId({ messageId: m.id }));
    await enqueueSends(ctx.queues, [{ messageId: m.id }]);
  }
  const [after] = await listMessages(ctx, { ids: [m.id] });
  return after!;
}
