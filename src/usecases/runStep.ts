// Step jobs fired: ask the engine what each enrollment does now, and do it. Jobs that fire together run
// in one transaction, as a fan-out page does: their enrollments are locked and their facts read in a few
// statements for all of them, and each is decided in turn (a send decided for one counts against the
// caps of the next at its account). Per job this was about eight round trips and a commit.
import { eq, inArray } from 'drizzle-orm';
import type { Context } from '../context.js';
import type { Tx } from '../db/client.js';
import { engagementOf, loadEngagementOfLeads, loadRecentSendsOf } from '../db/facts.js';
import { accounts, enrollments, leads } from '../db/schema.js';
import { decide } from '../engine/decide.js';
import type { StepJob } from '../queue/index.js';
import { applyDecision, enqueueFollowups, noFollowups } from './applyDecision.js';
import { factsOf, priorSteps, RecentSends, stateOf } from './engineInput.js';

export type RunStepResult = 'ran' | 'stale' | 'ended';

export async function runStep(ctx: Context, job: StepJob): Promise<RunStepResult> {
  return (await runSteps(ctx, [job]))[0]!;
}

/** Each job's result, in the jobs' order. */
export async function runSteps(ctx: Context, jobs: readonly StepJob[]): Promise<RunStepResult[]> {
  const out = noFollowups();
  const results = await ctx.db.transaction(async (tx): Promise<RunStepResult[]> => {
    const { funnel } = ctx.config;
    const now = ctx.now();
    const ids = [...new Set(jobs.map((j) => j.enrollmentId))].sort();
    // With frequency caps, an account's sends are counted and added one step at a time: two step jobs
    // for people at one account must not both see room under the cap. Accounts first, in id order, then
    // the enrollments in id order: every batch takes its locks in the same order.
    if (funnel.caps.lead || funnel.caps.account) await lockAccountsOfEnrollments(tx, ids);
    // The enrollments, locked, with their leads and accounts (unlocked), in one round trip.
    const locked = await tx
      .select({ row: enrollments, lead: leads, account: accounts })
      .from(enrollments)
      .innerJoin(leads, eq(leads.id, enrollments.leadId))
      .innerJoin(accounts, eq(accounts.id, leads.accountId))
      .where(inArray(enrollments.id, ids))
      .orderBy(enrollments.id)
      .for('no key update', { of: enrollments });
    const byId = new Map(locked.map((l) => [l.row.id, l]));
    const running = new Set<string>();
    const verdicts = jobs.map((job): RunStepResult => {
      const l = byId.get(job.enrollmentId);
      if (!l || l.row.state !== 'active') return 'ended';
      // Every transition bumps the revision: a job for an older one was superseded and must do nothing.
      if (l.row.revision !== job.revision || running.has(l.row.id)) return 'stale';
      running.add(l.row.id);
      return 'ran';
    });
    const runnable = locked.filter((l) => running.has(l.row.id));
    if (!runnable.length) return verdicts;

    // What loadFacts reads for one enrollment, for all of them at once.
    const versions = [...new Set(runnable.filter((l) => ctx.config.sequences.get(l.row.sequenceId)?.version !== l.row.sequenceVersion).map((l) => `${l.row.sequenceId}\0${l.row.sequenceVersion}`))];
    const [signalsBy, recent, prior] = await Promise.all([
      loadEngagementOfLeads(tx, [...new Set(runnable.map((l) => l.lead.id))], new Date(Math.min(...runnable.map((l) => l.row.enteredAt.getTime())))),
      loadRecentSendsOf(tx, funnel, runnable.map((l) => l.lead), now),
      Promise.all(versions.map(async (v) => [v, await priorSteps(tx, ...(v.split('\0') as [string, string]))] as const)).then((pairs) => new Map(pairs)),
    ]);
    const sends = new RecentSends(recent);

    // Decided in turn; the writes of one don't wait for the next decision (they share the transaction's
    // connection, pipelined).
    const writes: Promise<void>[] = [];
    for (const { row, lead, account } of runnable) {
      const seq = ctx.config.sequences.get(row.sequenceId);
      const priorStepIds = prior.get(`${row.sequenceId}\0${row.sequenceVersion}`);
      const decision = seq
        ? decide(
            seq,
            stateOf(row),
            { type: 'wake' },
            factsOf(ctx, seq, lead, account, {
              engagement: engagementOf(funnel, lead, signalsBy.get(lead.id) ?? [], now, { sequenceId: seq.id, since: row.enteredAt }),
              recentSends: sends.of(lead.id, account.id),
              ...(priorStepIds ? { priorStepIds } : {}),
            }),
            now,
          )
        : null;
      if (!seq || !decision) {
        // The sequence was deleted from the YAML: nothing more can run for it.
        const removed = { id: row.sequenceId, version: row.sequenceVersion };
        writes.push(applyDecision(ctx, tx, row, removed, { enrollment: { ...stateOf(row), state: 'exited', exitReason: 'manual', nextDueAt: null }, commands: [{ type: 'exit', reason: 'manual', because: 'sequence removed from configuration' }] }, lead, account, out));
        continue;
      }
      sends.count(decision, lead.id, account.id, now);
      writes.push(applyDecision(ctx, tx, row, seq, decision, lead, account, out));
    }
    await Promise.all(writes);
    return verdicts;
  });
  await enqueueFollowups(ctx, out);
  return results;
}

/**
 * Step jobs as a worker runs them: those in hand together run in one runSteps. A batch goes once every
 * job the worker may run at once (`size`, its concurrency) is in it, or `waitMs` after its first: BullMQ
 * hands a worker its jobs one fetch at a time, and going on the first one's turn made batches of two.
 * A batch that fails is run again job by job, so a failure (a row that breaks a constraint, a deadlock)
 * is only its own job's, retried as BullMQ retries any job.
 */
export function stepRunner(ctx: Context, opts: { size: number; waitMs?: number }): (job: StepJob) => Promise<RunStepResult> {
  type Waiting = { job: StepJob; resolve: (r: RunStepResult) => void; reject: (e: unknown) => void };
  let batch: Waiting[] = [];
  let timer: NodeJS.Timeout | null = null;
  const run = async (jobs: Waiting[]) => {
    try {
      const results = await runSteps(ctx, jobs.map((w) => w.job));
      jobs.forEach((w, i) => w.resolve(results[i]!));
    } catch (err) {
      if (jobs.length === 1) return jobs[0]!.reject(err);
      for (const w of jobs) await runStep(ctx, w.job).then(w.resolve, w.reject);
    }
  };
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    const jobs = batch;
    batch = [];
    if (jobs.length) void run(jobs);
  };
  return (job) =>
    new Promise<RunStepResult>((resolve, reject) => {
      batch.push({ job, resolve, reject });
      if (batch.length >= opts.size) flush();
      else timer ??= setTimeout(flush, opts.waitMs ?? 10);
    });
}

async function lockAccountsOfEnrollments(tx: Tx, enrollmentIds: string[]): Promise<void> {
  const refs = await tx.selectDistinct({ accountId: leads.accountId }).from(enrollments).innerJoin(leads, eq(leads.id, enrollments.leadId)).where(inArray(enrollments.id, enrollmentIds));
  if (refs.length) await tx.select({ id: accounts.id }).from(accounts).where(inArray(accounts.id, refs.map((r) => r.accountId))).orderBy(accounts.id).for('no key update');
}
