// Thin: parse the job, run the step use case. Every decision lives in src/engine.
import { Worker } from 'bullmq';
import type { Context } from '../src/context.js';
import { StepJob, WakeJob } from '../src/queue/index.js';
import { stepRunner, wakeDue } from '../src/usecases/runStep.js';

/**
 * Step jobs taken at once per WORKER_CONCURRENCY slot. They run as one batch, one transaction whose
 * statements they share (runSteps), not side by side: a step is a few rows to read and write, and a
 * batch of 50 sent follow-ups 15% faster than one of 10, on an eighth less CPU (bench-send, BENCH_LATER=1).
 */
const STEPS_PER_SLOT = 5;

export function stepWorker(ctx: Context, concurrency: number): Worker {
  const batch = concurrency * STEPS_PER_SLOT;
  const run = stepRunner(ctx, { size: batch });
  // The step queue holds both: a step job per enrollment due now, a wake job per second with steps due in it.
  return new Worker('step', async (job) => (job.name === 'wake' ? wakeDue(ctx, WakeJob.parse(job.data)) : run(StepJob.parse(job.data))), {
    connection: ctx.queues.settings.connection,
    prefix: ctx.queues.settings.prefix,
    concurrency: batch,
  });
}
