// Files the copy of a message sent through a rep's mailbox in their Sent folder, as it went out (flagged
// \Seen, dated when it was sent), so the thread lives in the rep's mail client like one they wrote. Its own
// job, apart from the send: a mailbox that is down delays the copy, never the mail. Idempotent: a copy
// already filed is not filed again (a retry after a lost reply to APPEND may file a second; the row's
// appended_at is set right after the APPEND's OK to keep that window small).
import { eq } from 'drizzle-orm';
import type { Context } from '../context.js';
import { logActivity } from '../db/activity.js';
import { copyFailed, copyFiled, copyRow, unfiledCopies } from '../db/mailboxes.js';
import { messages } from '../db/schema.js';
import { MailboxError } from '../mailbox/errors.js';
import { closeImap, connectImap, sentFolderOf } from '../mailbox/imap.js';
import { mailboxJobId, type MailboxJob } from '../queue/index.js';

export type CopyResult = 'filed' | 'already_filed' | 'gone' | 'not_configured';

export async function copyToSent(ctx: Context, messageRowId: string, attempt: { final: boolean } = { final: false }): Promise<CopyResult> {
  const copy = await copyRow(ctx.db, messageRowId);
  if (!copy || !copy.raw) return copy?.appendedAt ? 'already_filed' : 'gone';
  if (copy.appendedAt) return 'already_filed';
  const box = ctx.config.mailboxes.get(copy.mailbox);
  if (!box?.imap || !box.imap.copyToSent) return 'not_configured';
  const [msg] = await ctx.db.select({ sentAt: messages.sentAt, leadId: messages.leadId, to: messages.toAddress, sequenceId: messages.sequenceId, stepId: messages.stepId }).from(messages).where(eq(messages.id, messageRowId));
  let client = null;
  try {
    client = await connectImap(box.address, box.imap, { configDir: ctx.config.dir });
    const folder = await sentFolderOf(client, box.imap);
    await client.append(folder, copy.raw, ['\\Seen'], msg?.sentAt ?? copy.createdAt);
    await copyFiled(ctx.db, messageRowId, folder, ctx.now());
    return 'filed';
  } catch (err) {
    const why = err instanceof MailboxError ? err.message : `IMAP ${box.imap.host}:${box.imap.port}: ${(err as Error).message}`;
    await copyFailed(ctx.db, messageRowId, why).catch(() => {});
    if (attempt.final && msg) {
      await logActivity(ctx.db, [
        { leadId: msg.leadId, email: msg.to, sequenceId: msg.sequenceId, stepId: msg.stepId, kind: 'mailbox', detail: `the copy for ${box.address}'s Sent folder could not be filed yet: ${why}; reconcile tries again`, data: { mailbox: box.address, messageRowId } },
      ]);
    }
    throw new Error(why);
  } finally {
    await closeImap(client);
  }
}

/** Reconcile's part: a copy still unfiled whose job Redis lost (or that gave up) is queued again. */
export async function requeueUnfiledCopies(ctx: Context): Promise<number> {
  // created_at is the database's clock, not the engine's (which a test or simulation may move).
  const ids = await unfiledCopies(ctx.db, new Date(Date.now() - 60_000));
  if (!ids.length) return 0;
  await ctx.queues.mailbox.addBulk(ids.map((messageId) => {
    const job: MailboxJob = { task: 'copy_to_sent', messageId };
    return { name: 'copy_to_sent', data: job, opts: { jobId: mailboxJobId(job) } };
  }));
  return ids.length;
}
