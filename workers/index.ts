// Starts one worker per queue in this process; any number of such processes can share one Redis.
import type { Worker } from 'bullmq';
import type { Context } from '../src/context.js';
import { fanoutWorker } from './fanout.js';
import { maintenanceWorker } from './maintenance.js';
import { outboundWorker } from './outbound.js';
import { sendWorker } from './send.js';
import { settleWorker } from './settle.js';
import { stepWorker } from './step.js';

export interface Workers {
  all: Worker[];
  close(): Promise<void>;
}

export async function startWorkers(ctx: Context, opts: { concurrency: number; reconcileEverySeconds: number; drainSeconds?: number }): Promise<Workers> {
  const all = [stepWorker(ctx, opts.concurrency), sendWorker(ctx, opts.concurrency), fanoutWorker(ctx), outboundWorker(ctx), maintenanceWorker(ctx), settleWorker(ctx, opts.concurrency)];
  for (const w of all) {
    // A failing job is retried by BullMQ; say so where an operator looks, with the reason.
    w.on('failed', (job, err) => console.error(`[worker ${w.name}] job ${job?.id ?? '?'} failed (attempt ${job?.attemptsMade ?? '?'}): ${err.message}`));
  }
  // Redis is disposable: this scheduler (and the run at start-up) re-enqueues whatever Postgres says is due.
  // The scheduler itself lives in Redis, so each worker process puts it back on every beat: a FLUSHALL
  // can't take away the very thing that recovers from it. Upserting is idempotent.
  const schedule = () => ctx.queues.maintenance.upsertJobScheduler('reconcile', { every: opts.reconcileEverySeconds * 1000 }, { name: 'reconcile', data: { task: 'reconcile' } });
  await schedule();
  await ctx.queues.maintenance.add('reconcile', { task: 'reconcile' }, { jobId: `reconcile-start-${Date.now()}` });
  const beat = setInterval(() => void schedule().catch(() => {}), opts.reconcileEverySeconds * 1000);
  beat.unref();
  return {
    all,
    // close() stops taking jobs and waits for those in progress, so a send in flight finishes before the
    // process goes; past the drain timeout it forces the close (BullMQ hands the jobs to another worker).
    close: async () => {
      clearInterval(beat);
      const drained = Promise.all(all.map((w) => w.close()));
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), (opts.drainSeconds ?? 30) * 1000).unref());
      if ((await Promise.race([drained, timeout])) === 'timeout') await Promise.all(all.map((w) => w.close(true)));
    },
  };
}
