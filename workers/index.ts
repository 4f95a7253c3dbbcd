// Starts one worker per queue in this process; any number of such processes can share one Redis.
import type { Worker } from 'bullmq';
import type { Context } from '../src/context.js';
import { fanoutWorker } from './fanout.js';
import { maintenanceWorker } from './maintenance.js';
import { outboundWorker } from './outbound.js';
import { sendWorker } from './send.js';
import { stepWorker } from './step.js';

export interface Workers {
  all: Worker[];
  close(): Promise<void>;
}

export async function startWorkers(ctx: Context, opts: { concurrency: number; reconcileEverySeconds: number; drainSeconds?: number }): Promise<Workers> {
  const all = [stepWorker(ctx, opts.concurrency), sendWorker(ctx, opts.concurrency), fanoutWorker(ctx), outboundWorker(ctx), maintenanceWorker(ctx)];
  // Redis is disposable: this scheduler (and the run at start-up) re-enqueues whatever Postgres says is due.
  await ctx.queues.maintenance.upsertJobScheduler('reconcile', { every: opts.reconcileEverySeconds * 1000 }, { name: 'reconcile', data: { task: 'reconcile' } });
  await ctx.queues.maintenance.add('reconcile', { task: 'reconcile' }, { jobId: `reconcile-start-${Date.now()}` });
  return {
    all,
    // close() stops taking jobs and waits for those in progress, so a send in flight finishes before the
    // process goes; past the drain timeout it forces the close (BullMQ hands the jobs to another worker).
    close: async () => {
      const drained = Promise.all(all.map((w) => w.close()));
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), (opts.drainSeconds ?? 30) * 1000).unref());
      if ((await Promise.race([drained, timeout])) === 'timeout') await Promise.all(all.map((w) => w.close(true)));
    },
  };
}
