// Thin: parse the job, send the message (claim, render, limits, outcomes, the retry schedule live in the
// use case). Here only BullMQ's moves: a deferral is a delay, not a failure; a job that fails for good
// leaves no row `queued`.
import { DelayedError, UnrecoverableError, Worker } from 'bullmq';
import type { Context } from '../src/context.js';
import { redisSendCounters } from '../src/delivery/counters.js';
import { SendJob } from '../src/queue/index.js';
import { failUnsent, sendMessage, sendRetryBackoff } from '../src/usecases/sendMessage.js';

export function sendWorker(ctx: Context, concurrency: number): Worker {
  const counters = redisSendCounters(ctx.queues.settings.connection, ctx.queues.settings.prefix);
  const worker = new Worker(
    'send',
    async (job, token) => {
      const result = await sendMessage(ctx, SendJob.parse(job.data), { attempt: job.attemptsMade + 1, counters });
      if (result.status === 'deferred') {
        // BullMQ keeps real time; the engine's clock may be another (tests, simulations): move by the difference.
        await job.moveToDelayed(Date.now() + Math.max(0, result.until.getTime() - ctx.now().getTime()), token);
        throw new DelayedError(result.why);
      }
      return result.status;
    },
    { connection: ctx.queues.settings.connection, prefix: ctx.queues.settings.prefix, concurrency, maxStalledCount: 5, settings: { backoffStrategy: sendRetryBackoff(ctx) } },
  );
  worker.on('failed', (job, err) => {
    if (!job) return;
    // Stalled (its worker was killed): the message has not failed; the row's claim still guards it, so
    // free the job id for reconcile to re-add.
    if (/stalled/i.test(err.message)) return void job.remove().catch(() => {});
    // Final: unrecoverable, or the backoff said the schedule is spent (BullMQ then moved it to failed).
    if (!(err instanceof UnrecoverableError || err.name === 'UnrecoverableError' || job.finishedOn)) return;
    const parsed = SendJob.safeParse(job.data);
    if (parsed.success) failUnsent(ctx, parsed.data.messageId, `gave up after ${job.attemptsMade} attempts: ${err.message}`).catch((e: unknown) => console.error(`send ${parsed.data.messageId}: could not mark failed:`, e));
  });
  worker.on('closed', () => void counters.close()); // one counter connection per worker
  return worker;
}
