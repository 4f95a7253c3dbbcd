// Thin: parse the job, send the message. Claiming, rendering, limits and outcome mapping live in the use
// case; here only BullMQ's own moves: a deferral moves the job to delayed (not an attempt, not a failure),
// and a job that fails for good leaves no row `queued` behind.
import { DelayedError, UnrecoverableError, Worker } from 'bullmq';
import type { Context } from '../src/context.js';
import { redisSendCounters, redisUrlOf } from '../src/delivery/counters.js';
import { SendJob } from '../src/queue/index.js';
import { failUnsent, sendMessage } from '../src/usecases/sendMessage.js';

export function sendWorker(ctx: Context, concurrency: number): Worker {
  // One counter connection per worker, closed with it.
  const counters = redisSendCounters(redisUrlOf(ctx.queues.settings.connection), ctx.queues.settings.prefix);
  const worker = new Worker(
    'send',
    async (job, token) => {
      const result = await sendMessage(ctx, SendJob.parse(job.data), { attempt: job.attemptsMade + 1, maxAttempts: job.opts.attempts ?? 1, counters });
      if (result.status === 'deferred') {
        // BullMQ keeps real time; the engine's clock may be another (tests, simulations): move by the difference.
        await job.moveToDelayed(Date.now() + Math.max(0, result.until.getTime() - ctx.now().getTime()), token);
        throw new DelayedError(result.why);
      }
      return result.status;
    },
    { connection: ctx.queues.settings.connection, prefix: ctx.queues.settings.prefix, concurrency },
  );
  worker.on('failed', (job, err) => {
    if (!job) return;
    const final = err instanceof UnrecoverableError || err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
    if (!final) return;
    const parsed = SendJob.safeParse(job.data);
    if (!parsed.success) return;
    failUnsent(ctx, parsed.data.messageId, err.message).catch((e: unknown) => console.error(`send ${parsed.data.messageId}: could not mark failed:`, e));
  });
  worker.on('closed', () => {
    void counters.close();
  });
  return worker;
}
