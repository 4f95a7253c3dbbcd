// A segmented send to everyone already in its audience. Streams leads from Postgres in key-ordered
// pages (never OFFSET), enrolls each page in one insert, enqueues its steps in one addBulk, and hands
// the next page to a new job whose id carries the checkpoint: a crash resumes where it stopped, and
// memory stays flat however large the audience.
import { and, eq, gt, inArray, sql } from 'drizzle-orm';
import type { Context } from '../context.js';
import { logActivity } from '../db/activity.js';
import { profileOf } from '../db/facts.js';
import { accounts, enrollments, leads } from '../db/schema.js';
import { sequencesToEnroll } from '../engine/audience.js';
import { initialEnrollment } from '../engine/decide.js';
import { enqueueSteps, fanoutJobId, type FanoutJob } from '../queue/index.js';
import { UseCaseError } from './errors.js';

export const FANOUT_PAGE = 1000;

export async function startFanOut(ctx: Context, sequenceId: string): Promise<{ runId: string }> {
  const seq = ctx.config.sequences.get(sequenceId);
  if (!seq) throw new UseCaseError('unknown_sequence', `unknown sequence "${sequenceId}"`, 'sequence');
  const runId = `${seq.version}-${ctx.now().getTime()}`;
  const job: FanoutJob = { sequenceId, runId, afterLeadId: null };
  await ctx.queues.fanout.add('fanout', job, { jobId: fanoutJobId(job) });
  return { runId };
}

/** One page of a fan-out; returns how many it enrolled and whether another page follows. */
export async function fanOutPage(ctx: Context, job: FanoutJob, pageSize = FANOUT_PAGE): Promise<{ enrolled: number; scanned: number; next: string | null }> {
  const seq = ctx.config.sequences.get(job.sequenceId);
  if (!seq) return { enrolled: 0, scanned: 0, next: null };
  const now = ctx.now();
  const page = await ctx.db
    .select({ lead: leads, account: accounts })
    .from(leads)
    .innerJoin(accounts, eq(accounts.id, leads.accountId))
    .where(
      and(
        eq(leads.stage, seq.stage),
        eq(leads.status, 'active'),
        seq.personas ? inArray(leads.persona, seq.personas) : undefined,
        job.afterLeadId ? gt(leads.id, job.afterLeadId) : undefined,
      ),
    )
    .orderBy(leads.id)
    .limit(pageSize);
  if (!page.length) return { enrolled: 0, scanned: 0, next: null };

  const ids = page.map((p) => p.lead.id);
  const past = await ctx.db
    .select({ leadId: enrollments.leadId, sequenceId: enrollments.sequenceId, state: enrollments.state, enteredAt: enrollments.enteredAt, stageEnteredAt: enrollments.stageEnteredAt })
    .from(enrollments)
    .where(inArray(enrollments.leadId, ids));
  const pastBy = new Map<string, typeof past>();
  for (const p of past) pastBy.set(p.leadId, [...(pastBy.get(p.leadId) ?? []), p]);

  const start = initialEnrollment(seq, now);
  const chosen = page.filter(({ lead, account }) =>
    sequencesToEnroll([seq], { lead, profile: profileOf(lead, account), enrollments: pastBy.get(lead.id) ?? [] }, { on: 'manual', sequenceId: seq.id }, now).enroll.length > 0,
  );
  const inserted = chosen.length
    ? await ctx.db
        .insert(enrollments)
        .values(chosen.map(({ lead }) => ({ leadId: lead.id, sequenceId: seq.id, sequenceVersion: seq.version, state: 'active', cursor: start.cursor, nextDueAt: now, progress: { ...start.progress }, stageEnteredAt: lead.stageEnteredAt })))
        .onConflictDoNothing({ target: [enrollments.leadId, enrollments.sequenceId], where: sql`state = 'active'` })
        .returning({ id: enrollments.id })
    : [];
  await enqueueSteps(ctx.queues, inserted.map((r) => ({ job: { enrollmentId: r.id, revision: 0 }, at: now })), now);

  const last = ids[ids.length - 1]!;
  const next = page.length === pageSize ? last : null;
  if (next) {
    const nextJob: FanoutJob = { ...job, afterLeadId: next };
    await ctx.queues.fanout.add('fanout', nextJob, { jobId: fanoutJobId(nextJob) });
  } else {
    await logActivity(ctx.db, [{ sequenceId: seq.id, kind: 'fanout', detail: `fan-out ${job.runId} finished` }]);
  }
  return { enrolled: inserted.length, scanned: page.length, next };
}
