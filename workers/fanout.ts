// Thin: one page of a fan-out per job; the use case takes the checkpoint from the fan-out's row and
// enqueues the next page.
import { Worker } from 'bullmq';
import type { Context } from '../src/context.js';
import { FanoutJob } from '../src/queue/index.js';
import { fanOutPage } from '../src/usecases/fanOutSegment.js';

export function fanoutWorker(ctx: Context): Worker {
  return new Worker('fanout', async (job) => fanOutPage(ctx, FanoutJob.parse(job.data).fanoutId), {
    connection: ctx.queues.settings.connection,
    prefix: ctx.queues.settings.prefix,
    concurrency: 1,
    // A page takes well under a second and is safe to run again (the row's lock and checkpoint decide
    // what it does): a page held by a process that died is given back within ~15 s, not BullMQ's ~60 s.
    lockDuration: 10_000,
    stalledInterval: 5_000,
  });
}
