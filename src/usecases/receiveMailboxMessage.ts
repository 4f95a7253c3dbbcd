// A message arrived in a rep's inbox: the same inbound use case as POST /v1/inbound reads it (a reply, an
// out-of-office, a bounce, or nothing of ours), then the mailbox's checkpoint moves past it. Recorded once:
// the signal's source id is the mail's Message-ID (or, without one, the mailbox, UIDVALIDITY and UID), so a
// message read again after a crash between the two writes, or a reconnect, records nothing new.
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

export async function receiveMailboxMessage(ctx: Context, m: MailboxMessage): Promise<InboundResult | { matched: false; unreadable: string }> {
  let result: InboundResult | { matched: false; unreadable: string };
  try {
    result = await receiveInbound(ctx, m.raw, { sourceId: `imap-${m.mailbox}-${m.uidValidity}-${m.uid}`, ...(m.arrivedAt ? { receivedAt: m.arrivedAt } : {}) });
  } catch (err) {
    // A message built to exhaust the MIME parser (see http/mail.ts) would stop the inbox here for good:
    // it is said once and passed over. Anything else (the database) is retried by the watcher.
    if ((err as { code?: unknown })?.code !== 'EMAXLEN') throw err;
    const why = (err as Error).message;
    await logActivity(ctx.db, [{ kind: 'mailbox', detail: `mailbox ${m.mailbox}: message UID ${m.uid} cannot be read (${why}); passed over`, data: { mailbox: m.mailbox, uid: m.uid } }]);
    result = { matched: false, unreadable: why };
  }
  await advanceCheckpoint(ctx.db, m.mailbox, m.uidValidity, m.uid);
  return result;
}
