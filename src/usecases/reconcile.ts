// Postgres is the truth, Redis is disposable: re-enqueue every due step, unsent message and unfinished
// fan-out with its deterministic job id (a job that still exists makes the add a no-op), and report stuck sends.
// A step due within the step-job horizon gets its delayed job here too (its second's wake job, or its own
// when its wake is too near): further ahead, a step has no job in Redis at all (see stepJobHorizonMs),
// and this is what adds it in time. Overdue steps get their seconds swept again (enqueueOverdue).
import { and, eq, lte, sql } from 'drizzle-orm';
import type { Context } from '../context.js';
import { logActivity } from '../db/activity.js';
import { runningFanouts } from '../db/fanouts.js';
import { enrollments, messages } from '../db/schema.js';
import { enqueueDue, enqueueFanout, enqueueOutbound, enqueueOverdue, enqueueSends, enqueueSettles, wakeSecondOf } from '../queue/index.js';
import { pendingOutbound } from './outbound.js';
import { leadsToSettle } from './settleSignals.js';
import { replanDeferred } from './replanDeferred.js';
import { pruneWebhookReceipts } from './pruneReceipts.js';
import { requeueUnfiledCopies } from './copyToSent.js';
import { stepJobHorizonMs } from './applyDecision.js';

const PAGE = 1000;

export async function reconcile(ctx: Context): Promise<{ steps: number; soon: number; sends: number; settles: number; fanouts: number; replanned: number; uncertain: number }> {
  const now = ctx.now();
  const horizon = new Date(now.getTime() + stepJobHorizonMs(ctx.settings));
  /** Due now (or overdue); `soon` are those given a delayed job to their time. */
  let steps = 0;
  let soon = 0;
  let after = '00000000-0000-0000-0000-000000000000';
  const overdueSeconds = new Set<number>();
  for (;;) {
    const due = await ctx.db
      .select({ id: enrollments.id, revision: enrollments.revision, nextDueAt: enrollments.nextDueAt })
      .from(enrollments)
      .where(and(eq(enrollments.state, 'active'), lte(enrollments.nextDueAt, horizon), sql`${enrollments.id} > ${after}`))
      .orderBy(enrollments.id)
      .limit(PAGE);
    if (!due.length) break;
    const overdue = due.filter((d) => d.nextDueAt! <= now);
    const ahead = due.filter((d) => d.nextDueAt! > now);
    for (const d of overdue) overdueSeconds.add(wakeSecondOf(d.nextDueAt!));
    await enqueueDue(ctx.queues, ahead.map((d) => ({ job: { enrollmentId: d.id, revision: d.revision }, at: d.nextDueAt })), now);
    steps += overdue.length;
    soon += ahead.length;
    after = due[due.length - 1]!.id;
  }
  await enqueueOverdue(ctx.queues, [...overdueSeconds], now);
  const queued = await ctx.db.select({ id: messages.id }).from(messages).where(eq(messages.status, 'queued'));
  await enqueueSends(ctx.queues, queued.map((m) => ({ messageId: m.id })));
  await enqueueOutbound(ctx.queues, await pendingOutbound(ctx));
  // Every fan-out not done, from its checkpoint: a page job that stalled or failed for good was removed,
  // and one Redis lost is simply gone; the row says where to resume.
  const fanouts = await runningFanouts(ctx.db);
  for (const f of fanouts) await enqueueFanout(ctx.queues, f.id, f.afterLeadId);
  // Provisional opens and clicks whose settle job Redis lost (or a crash never added).
  const settle = await leadsToSettle(ctx);
  await enqueueSettles(ctx.queues, settle.map((leadId) => ({ job: { leadId }, at: now })), now);
  // Steps deferred to a window that the config, or a zone changed in the database, now puts elsewhere.
  const { replanned } = await replanDeferred(ctx);

  const cutoff = new Date(now.getTime() - ctx.settings.sendingTimeoutSeconds * 1000);
  const stuck = await ctx.db
    .update(messages)
    .set({ status: 'uncertain' })
    .where(and(eq(messages.status, 'sending'), lte(messages.sendingAt, cutoff)))
    .returning({ id: messages.id, leadId: messages.leadId, sequenceId: messages.sequenceId, stepId: messages.stepId, to: messages.toAddress });
  await logActivity(
    ctx.db,
    stuck.map((m) => ({ leadId: m.leadId, email: m.to, sequenceId: m.sequenceId, stepId: m.stepId, kind: 'uncertain', detail: 'no answer from the relay in time: may or may not have been delivered; not resent (see nurture messages --uncertain)' })),
  );
  // Copies for reps' Sent folders still unfiled (their job lost with Redis, or given up on).
  await requeueUnfiledCopies(ctx);
  await pruneWebhookReceipts(ctx);
  return { steps, soon, sends: queued.length, settles: settle.length, fanouts: fanouts.length, replanned, uncertain: stuck.length };
}
