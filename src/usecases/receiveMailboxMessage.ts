// A message arrived in a rep's inbox: the same inbound use case as POST /v1/inbound reads it (a reply, an
// out-of-office, a bounce, or nothing of ours), then the mailbox's checkpoint moves past it. Recorded once:
// the signal's source id is the mail's Message-ID or, without one, what its sender wrote (both as
// /v1/inbound names it, so a reply that also arrives forwarded counts once), and without a Date either, a
// hash of its bytes (not its UID: a folder the server renumbers is read again), so a message read again
// after a crash between the two writes, a reconnect, or a new UIDVALIDITY records nothing new.
import { createHash } from 'node:crypto';
import type { Context } from '../context.js';
import { logActivity } from '../db/activity.js';
import { advanceCheckpoint } from '../db/mailboxes.js';
import { receiveInbound, type InboundResult } from './receiveInbound.js';

export interface MailboxMessage {
  mailbox: string;
  uidValidity: bigint;
  uid: number;
  raw: Buffer;
  /** The server's INTERNALDATE: when it arrived. */
  arrivedAt: Date | null;
}

export type MailboxMessageResult = InboundResult | { matched: false; unreadable: string };

export async function receiveMailboxMessage(ctx: Context, m: MailboxMessage): Promise<MailboxMessageResult> {
  let result: MailboxMessageResult;
  try {
    const digest = createHash('sha256').update(m.raw).digest('hex').slice(0, 32);
    result = await receiveInbound(ctx, m.raw, { sourceId: `imap-${digest}`, ...(m.arrivedAt ? { receivedAt: m.arrivedAt } : {}) });
  } catch (err) {
    // A message that fails the same way on every read (built to exhaust the MIME parser, see http/mail.ts;
    // text Postgres refuses, such as a NUL) would stop the inbox here for good: it is said once and passed
    // over. Anything else (the database gone) is retried by the watcher.
    if (!isUnreadable(err)) throw err;
    return passOverMailboxMessage(ctx, m, (err as Error).message);
  }
  await advanceCheckpoint(ctx.db, m.mailbox, m.uidValidity, m.uid);
  return result;
}

/** Gives up on one message: logged where `nurture logs` shows it, and the checkpoint moves past it. */
export async function passOverMailboxMessage(ctx: Context, m: Pick<MailboxMessage, 'mailbox' | 'uidValidity' | 'uid'>, why: string): Promise<{ matched: false; unreadable: string }> {
  await logActivity(ctx.db, [{ kind: 'mailbox', email: m.mailbox, detail: `mailbox ${m.mailbox}: message UID ${m.uid} cannot be read or recorded (${why.slice(0, 300)}); passed over`, data: { mailbox: m.mailbox, uid: m.uid } }]);
  await advanceCheckpoint(ctx.db, m.mailbox, m.uidValidity, m.uid);
  return { matched: false, unreadable: why };
}

/** The message itself is the problem: the MIME parser's limits, or a value Postgres refuses (SQLSTATE class 22, data exception; 54, a program limit). */
export function isUnreadable(err: unknown): boolean {
  const code = codeOf(err);
  return code === 'EMAXLEN' || (typeof code === 'string' && /^(22|54)[0-9A-Z]{3}$/.test(code));
}

/** Failures that say nothing about the message (the database or network away, a lock or deadlock): never a reason to pass one over. */
export function isTransient(err: unknown): boolean {
  const code = codeOf(err);
  if (typeof code !== 'string') return false;
  return /^(08|40|53|57|58)[0-9A-Z]{3}$/.test(code) || /^(E(CONN|PIPE|TIMEDOUT|HOSTUNREACH|NETUNREACH|AI_)|CONNECT(ION)?_|CONNECTION_)/.test(code);
}

/** The error's code, or its cause's: drizzle wraps the driver's error (DrizzleQueryError) and keeps it as `cause`. */
function codeOf(err: unknown): unknown {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  return e?.code ?? e?.cause?.code;
}
