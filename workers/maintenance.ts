// Thin: the reconcile job scheduler's processor.
import { Worker } from 'bullmq';
import type { Context } from '../src/context.js';
import { MaintenanceJob } from '../src/queue/index.js';
import { reconcile } from '../src/usecases/reconcile.js';

export function maintenanceWorker(ctx: Context): Worker {
  return new Worker('maintenance', async (job) => {
    MaintenanceJob.parse(job.data);
    return reconcile(ctx);
  }, { connection: ctx.queues.settings.connection, prefix: ctx.queues.settings.prefix, concurrency: 1 });
}
