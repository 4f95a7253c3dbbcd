// Which way a message goes out: a one-to-one message from a rep who has a mailbox with SMTP goes through
// that mailbox; everything else (segmented mail, brand senders, reps without a mailbox) through the relay,
// as before. What the send path calls: transportFor (the choice), limitCountersFor (its rate limits) and
// afterSent (file the copy in the rep's Sent folder, as a job of its own).
import type { Transporter } from 'nodemailer';
import type { Sending, Sequence } from '../config/schema.js';
import type { Context } from '../context.js';
import { mailboxCopies } from '../db/schema.js';
import { limitCounter, limitCounters, perWindowLabel, type LimitCounter } from '../delivery/limits.js';
import { mailboxJobId, type MailboxJob } from '../queue/index.js';
import type { Mailbox } from '../config/mailboxes.js';

export interface SendRoute {
  transport: Transporter;
  /** The rep's mailbox the message goes through; null for the relay. */
  mailbox: Mailbox | null;
}

/** The transport for a message from `fromEmail` in `seq`. Throws (before anything is claimed) when the mailbox's password can't be read. */
export function transportFor(ctx: Context, seq: Pick<Sequence, 'mode'>, fromEmail: string): SendRoute {
  const box = seq.mode === 'one_to_one' ? (ctx.mailboxTransports?.mailboxFor(fromEmail) ?? null) : null;
  if (box) return { transport: ctx.mailboxTransports!.transportFor(box), mailbox: box };
  if (!ctx.transport) throw new Error('this process has no SMTP transport');
  return { transport: ctx.transport, mailbox: null };
}

/**
 * The rate limits a send counts against. Through the relay: the configured sending limits, as always.
 * Through a rep's mailbox: the mailbox's own limits (providers count per mailbox) and any limits on the
 * sending domain (its reputation is the same whichever server sends), but not the relay's.
 */
export function limitCountersFor(route: Pick<SendRoute, 'mailbox'>, sending: Pick<Sending, 'limits' | 'warmup'> | undefined, fromDomain: string, now: Date): LimitCounter[] {
  const configured = limitCounters(sending, fromDomain, now);
  const box = route.mailbox;
  if (!box?.smtp) return configured;
  const own: LimitCounter[] = [];
  for (const [window, max] of [['minute', box.smtp.limits.perMinute], ['day', box.smtp.limits.perDay]] as const) {
    if (max === undefined) continue;
    own.push(limitCounter(`mailbox:${box.address}`, window, max, `mailbox ${box.address} ${perWindowLabel(max, window)}`, now));
  }
  return [...configured.filter((c) => c.scope !== 'relay'), ...own];
}

/**
 * After a message went out through a rep's mailbox: keep its bytes in Postgres and queue the job that files
 * them in the rep's Sent folder. Never fails the send (the message is out): a problem is reported, and
 * reconcile re-queues any copy still unfiled.
 */
export async function afterSent(ctx: Context, route: Pick<SendRoute, 'mailbox'>, messageRowId: string, messageId: string): Promise<void> {
  const box = route.mailbox;
  if (!box) return;
  const raw = ctx.mailboxTransports?.takeRaw(messageId) ?? null;
  if (!raw || !box.imap?.copyToSent) return;
  try {
    await ctx.db.insert(mailboxCopies).values({ messageId: messageRowId, mailbox: box.address, raw }).onConflictDoNothing();
    const job: MailboxJob = { task: 'copy_to_sent', messageId: messageRowId };
    await ctx.queues.mailbox.add('copy_to_sent', job, { jobId: mailboxJobId(job) });
  } catch (err) {
    console.error(`[mailbox ${box.address}] could not queue the Sent copy of message ${messageRowId}: ${(err as Error).message}`);
  }
}
