// Messages a person looks at and decides about: list them by status, and settle an `uncertain` one —
// resend it (back to queued, same Message-ID) or record that it did arrive.
import { and, asc, eq, inArray } from 'drizzle-orm';
import type { Context } from '../context.js';
import { logActivity } from '../db/activity.js';
import { accounts, leads, messages } from '../db/schema.js';
import { enqueueSends, sendJobId } from '../queue/index.js';
import { messagesPage, signalsOfMessages } from '../db/reads.js';
import { UseCaseError } from './errors.js';
import { parseSince } from './stats.js';

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
  return rows.map(({ m, email, accountName }) => summaryOf(m, email, accountName));
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

// Pages by key, and what needs a person -------------------------------------------------------------

export interface MessagePage {
  messages: (MessageSummary & { signals?: { kind: string; human: boolean; reason: string; at: Date }[] })[];
  /** Pass as `before` for the next (older) page; null on the last one. */
  next: string | null;
}

export interface MessagePageQuery {
  status?: MessageStatus[];
  sequence?: string;
  since?: Date;
  before?: string;
  limit?: number;
}

const encodeKey = (at: Date, id: string) => Buffer.from(`${at.toISOString()}|${id}`).toString('base64url');

function decodeKey(key: string): { at: Date; id: string } {
  const [at, id] = Buffer.from(key, 'base64url').toString('utf8').split('|');
  const when = new Date(at ?? '');
  if (!id || !/^[0-9a-f-]{36}$/.test(id) || Number.isNaN(when.getTime())) throw new UseCaseError('invalid_field', 'before must be the `next` value of an earlier page', 'before');
  return { at: when, id };
}

/** GET /v1/messages?status=&sequence=&since=&before=&limit= from a query string; a bad field is a 400 naming it. */
export function messagesQuery(q: URLSearchParams, now: Date): MessagePageQuery {
  const out: MessagePageQuery = {};
  const get = (k: string) => {
    const v = q.get(k);
    return v === null || v.trim() === '' ? null : v.trim();
  };
  const status = get('status');
  if (status !== null) {
    const list = status.split(',').map((s) => s.trim());
    const wrong = list.find((s) => !(MESSAGE_STATUSES as readonly string[]).includes(s));
    if (wrong !== undefined) throw new UseCaseError('invalid_field', `status "${wrong.slice(0, 40)}" is not one of ${MESSAGE_STATUSES.join(', ')}`, 'status');
    out.status = list as MessageStatus[];
  }
  const sequence = get('sequence');
  if (sequence !== null) {
    if (!/^[\w-]{1,200}$/.test(sequence)) throw new UseCaseError('invalid_field', 'sequence must be a sequence id (letters, digits, "-" and "_")', 'sequence');
    out.sequence = sequence;
  }
  const since = get('since');
  if (since !== null) out.since = parseSince(since, now);
  const before = get('before');
  if (before !== null) {
    if (before.length > 200) throw new UseCaseError('invalid_field', 'before must be the `next` value of an earlier page', 'before');
    decodeKey(before);
    out.before = before;
  }
  const limit = get('limit');
  if (limit !== null) {
    if (!/^\d{1,4}$/.test(limit) || Number(limit) < 1 || Number(limit) > 500) throw new UseCaseError('invalid_field', 'limit must be a number from 1 to 500', 'limit');
    out.limit = Number(limit);
  }
  return out;
}

/** Messages newest first, by key: the same rows for the console, GET /v1/messages and `nurture messages`. */
export async function pageMessages(ctx: Pick<Context, 'db'>, q: MessagePageQuery, opts: { withSignals?: boolean } = {}): Promise<MessagePage> {
  const limit = q.limit ?? 100;
  const rows = await messagesPage(ctx.db, { statuses: q.status ?? null, sequence: q.sequence ?? null, since: q.since ?? null, before: q.before ? decodeKey(q.before) : null, limit });
  const summaries = rows.map(({ m, email, accountName }) => summaryOf(m, email, accountName));
  let withSignals: MessagePage['messages'] = summaries;
  if (opts.withSignals) {
    const sig = await signalsOfMessages(ctx.db, summaries.map((s) => s.id));
    withSignals = summaries.map((s) => ({ ...s, signals: sig.filter((g) => g.messageId === s.id).map((g) => ({ kind: g.kind, human: g.human, reason: g.reason, at: g.occurredAt })) }));
  }
  const last = rows.at(-1);
  return { messages: withSignals, next: rows.length === limit && last ? encodeKey(last.m.queuedAt, last.m.id) : null };
}

function summaryOf(m: typeof messages.$inferSelect, email: string, accountName: string | null): MessageSummary {
  return {
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
  };
}

/**
 * What waits for a person: `uncertain` sends (settle: resend or mark sent; a signal from the recipient
 * proves it arrived), `held` messages (a value the template needs is missing: fix the lead in the CRM)
 * and `failed` ones (the relay kept refusing). Each with its signals, so what is known is on the page.
 */
export async function needsAPerson(ctx: Pick<Context, 'db'>, limit = 200): Promise<Record<'uncertain' | 'held' | 'failed', MessagePage['messages']>> {
  const [uncertain, held, failed] = await Promise.all(
    (['uncertain', 'held', 'failed'] as const).map((s) => pageMessages(ctx, { status: [s], limit }, { withSignals: true }).then((p) => p.messages)),
  );
  return { uncertain: uncertain!, held: held!, failed: failed! };
}
