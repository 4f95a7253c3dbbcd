// Thin: parse the job, run the step use case. Every decision lives in src/engine.
import { Worker } from 'bullmq';
import type { Context } from '../src/context.js';
import { StepJob } from '../src/queue/index.js';
import { runStep } from '../src/usecases/runStep.js';

export function stepWorker(ctx: Context, concurrency: number): Worker {
  return new Worker('step', async (job) => runStep(ctx, StepJob.parse(job.data)), {
    connection: ctx.queues.settings.connection,
    prefix: ctx.queues.settings.prefix,
    concurrency,
  });
}
