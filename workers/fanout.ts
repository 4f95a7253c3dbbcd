// Thin: one page of a segmented fan-out per job; the use case enqueues the next page.
import { Worker } from 'bullmq';
import type { Context } from '../src/context.js';
import { FanoutJob } from '../src/queue/index.js';
import { fanOutPage } from '../src/usecases/fanOutSegment.js';

export function fanoutWorker(ctx: Context): Worker {
  return new Worker('fanout', async (job) => fanOutPage(ctx, FanoutJob.parse(job.data)), {
    connection: ctx.queues.settings.connection,
    prefix: ctx.queues.settings.prefix,
    concurrency: 1,
  });
}
