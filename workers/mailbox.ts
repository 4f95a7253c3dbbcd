// Thin: file Sent copies (the mailbox queue), and watch each rep's inbox (src/mailbox/watcher.ts holds the
// loop, its lock and its backoff; what a message means is the use cases').
import { Worker } from 'bullmq';
import type { Context } from '../src/context.js';
import { startMailboxWatchers, type MailboxWatchers, type WatcherOptions } from '../src/mailbox/watcher.js';
import { MailboxJob } from '../src/queue/index.js';
import { copyToSent } from '../src/usecases/copyToSent.js';

export function mailboxWorker(ctx: Context): Worker {
  return new Worker(
    'mailbox',
    async (job) => {
      const { messageId } = MailboxJob.parse(job.data);
      return copyToSent(ctx, messageId, { final: job.attemptsMade + 1 >= (job.opts.attempts ?? 1) });
    },
    { connection: ctx.queues.settings.connection, prefix: ctx.queues.settings.prefix, concurrency: 2 },
  );
}

export function mailboxWatchers(ctx: Context, opts: WatcherOptions = {}): MailboxWatchers {
  return startMailboxWatchers(ctx, opts);
}
