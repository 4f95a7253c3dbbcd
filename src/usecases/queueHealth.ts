// What the queues hold right now: per queue, jobs waiting, delayed, active and failed; the job that has
// been due longest; the failed jobs with their error; and reconcile's last run. Redis holds work in
// flight only, so this is a view of the moment (Postgres holds the truth). The console's queues page,
// GET /v1/queues and the queue gauges in /metrics.
import type { Job } from 'bullmq';
import type { Context } from '../context.js';
import { QUEUE_NAMES, type QueueName } from '../queue/index.js';
import { mailboxHealth, type MailboxHealth } from './mailboxStatus.js';

export interface QueueView {
  name: QueueName;
  counts: { waiting: number; delayed: number; active: number; failed: number; prioritized: number };
  /** The job due longest ago that no worker has taken yet. */
  oldestDue: { id: string; dueSince: string; waitingSeconds: number } | null;
  /** The delayed job due soonest. */
  nextDelayed: { id: string; dueAt: string } | null;
  failed: { id: string; name: string; error: string; attempts: number; failedAt: string | null; data: unknown }[];
}

export interface ReconcileRun {
  finishedAt: string;
  tookMs: number | null;
  ok: boolean;
  result: unknown;
  error: string | null;
}

export interface QueueHealth {
  queues: QueueView[];
  reconcile: { last: ReconcileRun | null; nextAt: string | null; everySeconds: number | null; keptRuns: { ok: number; failed: number } };
  /** The reps' mailboxes (mailboxes.yaml): each watcher's state, last error and next retry. */
  mailboxes: MailboxHealth[];
}

const dueAt = (j: Job) => j.timestamp + (j.delay ?? 0);

export async function queueHealth(ctx: Pick<Context, 'queues'> & Partial<Pick<Context, 'db' | 'config'>>, opts: { failed?: number } = {}): Promise<QueueHealth> {
  const queues = await Promise.all(
    QUEUE_NAMES.map(async (name): Promise<QueueView> => {
      const q = ctx.queues[name];
      const [c, waiting, delayed, failed] = await Promise.all([
        q.getJobCounts('waiting', 'delayed', 'active', 'failed', 'prioritized'),
        q.getJobs(['waiting'], 0, 0, true),
        q.getJobs(['delayed'], 0, 0, true),
        opts.failed === 0 ? Promise.resolve([]) : q.getJobs(['failed'], 0, (opts.failed ?? 20) - 1, false),
      ]);
      const oldest = waiting.find(Boolean);
      const soonest = delayed.find(Boolean);
      return {
        name,
        counts: { waiting: c.waiting ?? 0, delayed: c.delayed ?? 0, active: c.active ?? 0, failed: c.failed ?? 0, prioritized: c.prioritized ?? 0 },
        oldestDue: oldest ? { id: String(oldest.id), dueSince: new Date(dueAt(oldest)).toISOString(), waitingSeconds: Math.max(0, Math.round((Date.now() - dueAt(oldest)) / 1000)) } : null,
        nextDelayed: soonest ? { id: String(soonest.id), dueAt: new Date(dueAt(soonest)).toISOString() } : null,
        failed: failed.filter(Boolean).map((j) => ({ id: String(j.id), name: j.name, error: j.failedReason ?? '', attempts: j.attemptsMade, failedAt: j.finishedOn ? new Date(j.finishedOn).toISOString() : null, data: j.data })),
      };
    }),
  );
  const m = ctx.queues.maintenance;
  const [done, broken, schedulers] = await Promise.all([m.getJobs(['completed'], 0, 0, false), m.getJobs(['failed'], 0, 0, false), m.getJobSchedulers(0, 10)]);
  const runs = [...done, ...broken].filter((j): j is Job => !!j && !!j.finishedOn).sort((a, b) => b.finishedOn! - a.finishedOn!);
  const last = runs[0];
  const kept = await m.getJobCounts('completed', 'failed');
  const scheduler = schedulers.find((s) => s.key === 'reconcile' || s.name === 'reconcile');
  const mailboxes = ctx.db && ctx.config?.mailboxes?.size ? await mailboxHealth({ db: ctx.db, config: ctx.config }) : [];
  return {
    queues,
    reconcile: {
      last: last
        ? { finishedAt: new Date(last.finishedOn!).toISOString(), tookMs: last.processedOn ? last.finishedOn! - last.processedOn : null, ok: !last.failedReason, result: last.returnvalue ?? null, error: last.failedReason ?? null }
        : null,
      nextAt: scheduler?.next ? new Date(scheduler.next).toISOString() : null,
      everySeconds: scheduler?.every ? Math.round(Number(scheduler.every) / 1000) : null,
      keptRuns: { ok: kept.completed ?? 0, failed: kept.failed ?? 0 },
    },
    mailboxes,
  };
}
