// Erasure at the person's request (GDPR art. 17): every row about them goes, in one transaction; what
// stays is a keyed hash of the address in the suppression list (so they are never enrolled or mailed
// again), an audit entry that says what was removed but not whose it was, and the CRM is told.
import { eq, inArray, or, sql } from 'drizzle-orm';
import type { Context } from '../context.js';
import { activity, advances, auditLog, enrollments, leads, messages, outboundEvents, signals, suppressions, webhookReceipts } from '../db/schema.js';
import { enqueueFollowups, noFollowups } from './applyDecision.js';
import { erasedKey } from './enrollLead.js';
import { UseCaseError } from './errors.js';
import { isEmail } from './inputs.js';
import { emitOutbound } from './outbound.js';
import { sendJobId, stepJobId } from '../queue/index.js';

export interface EraseResult {
  erased: true;
  removed: Record<string, number>;
}

export async function eraseLead(ctx: Context, emailInput: string, opts: { actor: string }): Promise<EraseResult> {
  const email = emailInput.trim().toLowerCase();
  if (!isEmail(email)) throw new UseCaseError('invalid_email', `"${emailInput.slice(0, 100)}" is not an email address`, 'email');
  const out = noFollowups();
  const like = `%${email.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const result = await ctx.db.transaction(async (tx) => {
    const [lead] = await tx.select().from(leads).where(eq(leads.email, email)).for('no key update');
    if (!lead) throw new UseCaseError('unknown_lead', `no lead with email ${email}`, 'email');
    const idLike = `%${lead.id}%`;
    const mentions = (col: unknown) => sql`(${col}::text ilike ${like} or ${col}::text like ${idLike})`;
    const enrollmentRows = await tx.select({ id: enrollments.id, revision: enrollments.revision }).from(enrollments).where(eq(enrollments.leadId, lead.id));
    const messageIds = (await tx.select({ id: messages.id }).from(messages).where(eq(messages.leadId, lead.id))).map((r) => r.id);
    const count = async (q: PromiseLike<unknown[]>) => (await q).length;
    const removed: Record<string, number> = {};
    // Signals first (they name messages), then messages, enrollments and the lead itself. Evidence of
    // another lead's signal that quotes this address (a colleague's reply from it) goes too.
    removed.signals = await count(
      tx.delete(signals).where(or(eq(signals.leadId, lead.id), messageIds.length ? inArray(signals.messageId, messageIds) : undefined, mentions(signals.evidence))).returning({ id: signals.id }),
    );
    removed.messages = await count(tx.delete(messages).where(eq(messages.leadId, lead.id)).returning({ id: messages.id }));
    removed.enrollments = await count(tx.delete(enrollments).where(eq(enrollments.leadId, lead.id)).returning({ id: enrollments.id }));
    removed.advances = await count(tx.delete(advances).where(eq(advances.leadId, lead.id)).returning({ id: advances.id }));
    removed.activity = await count(
      tx.delete(activity).where(or(eq(activity.leadId, lead.id), sql`lower(${activity.email}) = ${email}`, sql`${activity.detail} ilike ${like}`, mentions(activity.data))).returning({ id: activity.id }),
    );
    removed.outboundEvents = await count(tx.delete(outboundEvents).where(mentions(outboundEvents.payload)).returning({ id: outboundEvents.id }));
    removed.webhookReceipts = await count(tx.delete(webhookReceipts).where(mentions(webhookReceipts.response)).returning({ id: webhookReceipts.id }));
    removed.suppressions = await count(tx.delete(suppressions).where(eq(suppressions.email, email)).returning({ email: suppressions.email }));
    removed.leads = await count(tx.delete(leads).where(eq(leads.id, lead.id)).returning({ id: leads.id }));
    await tx.insert(suppressions).values({ email: erasedKey(ctx.settings, email), reason: 'erased', source: 'erasure' }).onConflictDoNothing();
    await tx.insert(auditLog).values({ action: 'lead.erased', actor: opts.actor, detail: { removed } });
    // The CRM needs to know whom to erase on its side. Once delivered, the outbox row is scrubbed
    // (deliverOutbound); until then it is the one place the address remains.
    await emitOutbound(ctx, tx, 'lead.erased', { lead: { id: lead.id, email }, erasedAt: ctx.now().toISOString() }, out);
    return { removed, enrollmentRows, messageIds };
  });
  await enqueueFollowups(ctx, out);
  await dropQueuedJobs(ctx, result.enrollmentRows, result.messageIds);
  return { erased: true, removed: result.removed };
}

/**
 * Jobs carry only row ids, and a job whose row is gone does nothing; they are removed all the same, so
 * nothing in Redis refers to the person either. Job ids are deterministic: no scan of the queues.
 */
async function dropQueuedJobs(ctx: Context, enrollments: { id: string; revision: number }[], messageIds: string[]): Promise<void> {
  const ids = [
    ...enrollments.map((e) => [ctx.queues.step, stepJobId({ enrollmentId: e.id, revision: e.revision })] as const),
    ...messageIds.map((id) => [ctx.queues.send, sendJobId({ messageId: id })] as const),
  ];
  await Promise.all(ids.map(([queue, id]) => queue.remove(id).catch(() => 0)));
}
