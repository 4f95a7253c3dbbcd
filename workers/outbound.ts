// Thin: deliver one outbound webhook to the user's CRM.
import { Worker } from 'bullmq';
import type { Context } from '../src/context.js';
import { OutboundJob } from '../src/queue/index.js';
import { deliverOutbound } from '../src/usecases/outbound.js';

export function outboundWorker(ctx: Context): Worker {
  return new Worker('outbound', async (job) => deliverOutbound(ctx, OutboundJob.parse(job.data)), {
    connection: ctx.queues.settings.connection,
    prefix: ctx.queues.settings.prefix,
    concurrency: 5,
  });
}
