// Thin: parse the job, send the message. Claiming, rendering and outcome mapping live in the use case.
import { Worker } from 'bullmq';
import type { Context } from '../src/context.js';
import { SendJob } from '../src/queue/index.js';
import { sendMessage } from '../src/usecases/sendMessage.js';

export function sendWorker(ctx: Context, concurrency: number): Worker {
  return new Worker('send', async (job) => sendMessage(ctx, SendJob.parse(job.data)), {
    connection: ctx.queues.settings.connection,
    prefix: ctx.queues.settings.prefix,
    concurrency,
  });
}
