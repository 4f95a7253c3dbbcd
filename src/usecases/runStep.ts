// Step jobs fired: ask the engine what each enrollment does now, and do it. Jobs that fire together run
// in one transaction, as a fan-out page does: their enrollments are locked and their facts read in a few
// statements for all of them, and each is decided in turn (a send decided for one counts against the
// caps of the next at its account). Per job this was about eight round trips and a commit.
import { setTimeout as sleep } from 'node:timers/promises';
import { and, eq, gte, inArray, lte, sql } from 'drizzle-orm';
import type { Context } from '../context.js';
import type { Tx } from '../db/client.js';
import { engagementOf, loadEngagementOfLeads, loadRecentSendsOf } from '../db/facts.js';
import { accounts, enrollments, leads } from '../db/schema.js';
import { decide } from '../engine/decide.js';
import { enqueueWakeFrom, WAKE_AHEAD_MS, type StepJob, type WakeJob } from '../queue/index.js';
import { addFollowups, applyDecisions, enqueueFollowups, noFollowups, type DecisionFor, type Followups } from './applyDecision.js';
import { factsOf, priorSteps, RecentSends, stateOf } from './engineInput.js';

export type RunStepResult = 'ran' | 'stale' | 'ended';

export async function runStep(ctx: Context, job: StepJob): Promise<RunStepResult> {
  return (await runSteps(ctx, [job]))[0]!;
}

/**
 * Each job's result, in the jobs' order. A job runs when its revision is still the enrollment's; with
 * `dueBy` (a wake's sweep) whatever the revision, if the enrollment is due by then when it is locked.
 */
export async function runSteps(ctx: Context, jobs: readonly StepJob[], opts: { dueBy?: Date } = {}): Promise<RunStepResult[]> {
  const { results, out } = await stepsCommitted(ctx, jobs, opts);
  await enqueueFollowups(ctx, out);
  return results;
}

/** runSteps' transaction, committed: each job's result, and the jobs what it wrote needs queued. */
async function stepsCommitted(ctx: Context, jobs: readonly StepJob[], opts: { dueBy?: Date }): Promise<{ results: RunStepResult[]; out: Followups }> {
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
      // A sweep read the row unlocked: it runs what is still due now that it holds the lock.
      const current = opts.dueBy ? !!l.row.nextDueAt && l.row.nextDueAt <= opts.dueBy : l.row.revision === job.revision;
      if (!current || running.has(l.row.id)) return 'stale';
      running.add(l.row.id);
      return 'ran';
    });
    const runnable = locked.filter((l) => running.has(l.row.id));
    if (!runnable.length) return verdicts;

    // What loadFacts reads for one enrollment, for all of them at once.
    const versions = [...new Set(runnable.filter((l) => ctx.config.sequences.get(l.row.sequenceId)?.version !== l.row.sequenceVersion).map((l) => `${l.row.sequenceId}\0${l.row.sequenceVersion}`))];
    const [signalsBy, recent, prior] = await Promise.all([
      loadEngagementOfLeads(tx, [...new Set(runnable.map((l) => l.lead.id))], earliestRunOf(runnable)),
      loadRecentSendsOf(tx, funnel, runnable.map((l) => l.lead), now),
      Promise.all(versions.map(async (v) => [v, await priorSteps(tx, ...(v.split('\0') as [string, string]))] as const)).then((pairs) => new Map(pairs)),
    ]);
    const sends = new RecentSends(recent);

    // Decided in turn, then written together: a statement per table for the whole batch.
    const decided: DecisionFor[] = [];
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
        decided.push({ row, seq: removed, decision: { enrollment: { ...stateOf(row), state: 'exited', exitReason: 'manual', nextDueAt: null }, commands: [{ type: 'exit', reason: 'manual', because: 'sequence removed from configuration' }] }, lead, account });
        continue;
      }
      sends.count(decision, lead.id, account.id, now);
      decided.push({ row, seq, decision, lead, account });
    }
    await applyDecisions(ctx, tx, decided, out);
    return verdicts;
  });
  return { results, out };
}

/** Each lead's earliest run start among a batch's enrollments: how far back its step facts reach. */
function earliestRunOf(batch: { row: { enteredAt: Date }; lead: { id: string } }[]): Map<string, Date> {
  const by = new Map<string, Date>();
  for (const { row, lead } of batch) {
    const seen = by.get(lead.id);
    if (!seen || row.enteredAt < seen) by.set(lead.id, row.enteredAt);
  }
  return by;
}

/** Enrollments a wake's sweep takes in one runSteps (one transaction). */
export const WAKE_PAGE = 200;
/** Pages one wake job sweeps before the rest of its second goes on in a job of its own. */
export const WAKE_PAGES_PER_JOB = 10;

/**
 * A wake job: the steps due in its second, a page at a time, each page one runSteps. Steps planned ahead
 * share these (enqueueDue), so a thousand follow-ups due together are five transactions and a job, not a
 * thousand jobs. Pages go in (due time, id) order, on the due-time index: a send window can make a
 * hundred thousand steps due in the same second, and each page starts where the last one ended. After
 * WAKE_PAGES_PER_JOB pages the rest goes on in a new job from there, so a job is a second or two of work
 * (a stopping worker drains it in time) and another process may take the rest.
 * A page that fails runs again step by step (runStepsSettled), so one enrollment that can't move holds
 * back only itself: the job still hands the rest of its second on, then fails, and its retry finds only
 * what is still due in its own pages.
 */
export async function wakeDue(ctx: Context, job: WakeJob, opts: { page?: number; pages?: number } = {}): Promise<{ ran: number; more: boolean }> {
  const { page = WAKE_PAGE, pages = WAKE_PAGES_PER_JOB } = opts;
  const end = new Date(job.second * 1000);
  // The job came due by the clock of the worker that promoted it; this one may be a little behind, and
  // would pass over what is due at the second's very end (a send window puts a crowd exactly there).
  const early = end.getTime() - ctx.now().getTime();
  if (early > 0) await sleep(Math.min(early, 2 * WAKE_AHEAD_MS));
  let after = job.after ? { at: new Date(job.after.at), id: job.after.id } : { at: new Date(end.getTime() - 1000), id: 'ffffffff-ffff-ffff-ffff-ffffffffffff' };
  let ran = 0;
  let more = false;
  const failed: unknown[] = [];
  for (let done = 0; ; done++) {
    if (done === pages) {
      // Even when a page here failed: one row that can't move must not hold up the crowd behind it.
      await enqueueWakeFrom(ctx.queues, { ...job, after: { at: after.at.toISOString(), id: after.id } });
      more = true;
      break;
    }
    const now = ctx.now();
    const dueBy = now < end ? now : end;
    const due = await ctx.db
      .select({ enrollmentId: enrollments.id, revision: enrollments.revision, at: enrollments.nextDueAt })
      .from(enrollments)
      .where(and(eq(enrollments.state, 'active'), gte(enrollments.nextDueAt, after.at), sql`(${enrollments.nextDueAt}, ${enrollments.id}) > (${after.at.toISOString()}::timestamptz, ${after.id}::uuid)`, lte(enrollments.nextDueAt, dueBy)))
      .orderBy(enrollments.nextDueAt, enrollments.id)
      .limit(page);
    if (!due.length) break;
    for (const r of await runStepsSettled(ctx, due.map(({ enrollmentId, revision }) => ({ enrollmentId, revision })), { dueBy })) {
      if (r.status === 'rejected') failed.push(r.reason);
      else if (r.value === 'ran') ran++;
    }
    if (due.length < page) break;
    const last = due[due.length - 1]!;
    after = { at: last.at!, id: last.enrollmentId };
  }
  // A failed job is retried from where it started: what it did is no longer due, what failed still is
  // (and the next job's add, made again, is a no-op).
  if (failed.length) throw new AggregateError(failed, `${failed.length} step(s) due at ${end.toISOString()} failed: ${rootMessage(failed[0])}`);
  return { ran, more };
}

/**
 * runSteps, each step's outcome apart: a batch that fails is run again step by step, so a failure (a row
 * that breaks a constraint, a deadlock) is only its own step's.
 */
async function runStepsSettled(ctx: Context, steps: readonly StepJob[], opts: { dueBy?: Date } = {}): Promise<PromiseSettledResult<RunStepResult>[]> {
  const out = noFollowups();
  const settled = await committedEach(ctx, steps, opts, out);
  // Once, after every commit. A failure here is Redis's, not a step's: it fails the lot, and must not
  // run the batch again step by step (each would come back stale, and what it queued never be added).
  await enqueueFollowups(ctx, out);
  return settled;
}

async function committedEach(ctx: Context, steps: readonly StepJob[], opts: { dueBy?: Date }, out: Followups): Promise<PromiseSettledResult<RunStepResult>[]> {
  try {
    const done = await stepsCommitted(ctx, steps, opts);
    addFollowups(out, done.out);
    return done.results.map((value) => ({ status: 'fulfilled', value }));
  } catch (reason) {
    if (steps.length === 1) return [{ status: 'rejected', reason }];
    const each: PromiseSettledResult<RunStepResult>[] = [];
    for (const step of steps) each.push(...(await committedEach(ctx, [step], opts, out)));
    return each;
  }
}

/**
 * Step jobs as a worker runs them: those in hand together run in one runSteps. A batch goes once every
 * job the worker may run at once (`size`, its concurrency) is in it, or `waitMs` after its first: BullMQ
 * hands a worker its jobs one fetch at a time, and going on the first one's turn made batches of two.
 * A job whose step fails (alone: runStepsSettled) fails as BullMQ retries any job.
 */
export function stepRunner(ctx: Context, opts: { size: number; waitMs?: number }): (job: StepJob) => Promise<RunStepResult> {
  type Waiting = { job: StepJob; resolve: (r: RunStepResult) => void; reject: (e: unknown) => void };
  let batch: Waiting[] = [];
  let timer: NodeJS.Timeout | null = null;
  const run = async (jobs: Waiting[]) => {
    let settled: PromiseSettledResult<RunStepResult>[];
    try {
      settled = await runStepsSettled(ctx, jobs.map((w) => w.job));
    } catch (e) {
      // Committed, but their follow-ups were not queued: every job fails, and reconcile finds the rest.
      for (const w of jobs) w.reject(e);
      return;
    }
    jobs.forEach((w, i) => {
      const r = settled[i]!;
      if (r.status === 'fulfilled') w.resolve(r.value);
      else w.reject(r.reason);
    });
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

/** What went wrong underneath: drizzle wraps Postgres's error in one that quotes the whole query. */
const rootMessage = (err: unknown): string => (err instanceof Error ? (err.cause ? rootMessage(err.cause) : err.message) : String(err));

async function lockAccountsOfEnrollments(tx: Tx, enrollmentIds: string[]): Promise<void> {
  const refs = await tx.selectDistinct({ accountId: leads.accountId }).from(enrollments).innerJoin(leads, eq(leads.id, enrollments.leadId)).where(inArray(enrollments.id, enrollmentIds));
  if (refs.length) await tx.select({ id: accounts.id }).from(accounts).where(inArray(accounts.id, refs.map((r) => r.accountId))).orderBy(accounts.id).for('no key update');
}
