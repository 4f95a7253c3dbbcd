// Thin: a few pages of a fan-out per job; the use case takes the checkpoint from the fan-out's row and
// enqueues the job for the rest.
import { Worker } from 'bullmq';
import type { Context } from '../src/context.js';
import { FanoutJob } from '../src/queue/index.js';
import { fanOutPages } from '../src/usecases/fanOutSegment.js';

export function fanoutWorker(ctx: Context): Worker {
  return new Worker('fanout', async (job) => fanOutPages(ctx, FanoutJob.parse(job.data).fanoutId), {
    connection: ctx.queues.settings.connection,
    prefix: ctx.queues.settings.prefix,
    concurrency: 1,
    // A job's pages take a few seconds (the lock is renewed meanwhile) and are safe to run again (the row's
    // lock and checkpoint decide what each does): a job held by a process that died is given back within
    // ~15 s, not BullMQ's ~60 s, and resumes after the last page that committed.
    lockDuration: 10_000,
    stalledInterval: 5_000,
  });
}
