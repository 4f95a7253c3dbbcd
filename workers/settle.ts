// Thin: parse the job, settle the lead's provisional signals. What settles, and what it counts for, lives in the use case.
import { Worker } from 'bullmq';
import type { Context } from '../src/context.js';
import { SettleJob } from '../src/queue/index.js';
import { settleSignals } from '../src/usecases/settleSignals.js';

export function settleWorker(ctx: Context, concurrency: number): Worker {
  return new Worker('settle', async (job) => settleSignals(ctx, SettleJob.parse(job.data).leadId), {
    connection: ctx.queues.settings.connection,
    prefix: ctx.queues.settings.prefix,
    concurrency,
  });
}
