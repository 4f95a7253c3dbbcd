// Starts one worker per queue in this process; any number of such processes can share one Redis.
import type { Worker } from 'bullmq';
import type { Context } from '../src/context.js';
import { queueErrorLine } from '../src/queue/index.js';
import { fanoutWorker } from './fanout.js';
import { mailboxWatchers, mailboxWorker } from './mailbox.js';
import type { MailboxWatchers, WatcherOptions } from '../src/mailbox/watcher.js';
import { maintenanceWorker } from './maintenance.js';
import { outboundWorker } from './outbound.js';
import { sendWorker } from './send.js';
import { settleWorker } from './settle.js';
import { stepWorker } from './step.js';

export interface Workers {
  all: Worker[];
  /** The reps' inbox watchers this process runs (each holds its mailbox's lock while it watches). */
  mailboxes: MailboxWatchers;
  /** Stops taking jobs and waits up to the drain timeout (or `seconds`) for those in progress: 'timeout' when some were left. */
  close(seconds?: number): Promise<'drained' | 'timeout'>;
}

export async function startWorkers(ctx: Context, opts: { concurrency: number; reconcileEverySeconds: number; drainSeconds?: number; mailbox?: WatcherOptions }): Promise<Workers> {
  const all = [stepWorker(ctx, opts.concurrency), sendWorker(ctx, opts.concurrency), fanoutWorker(ctx), outboundWorker(ctx), maintenanceWorker(ctx), settleWorker(ctx, opts.concurrency), mailboxWorker(ctx)];
  for (const w of all) {
    // A failing job is retried by BullMQ; say so where an operator looks, with the reason.
    w.on('failed', (job, err) => console.error(`[worker ${w.name}] job ${job?.id ?? '?'} failed (attempt ${job?.attemptsMade ?? '?'}): ${err.message}`));
    // Without a listener BullMQ prints the bare error: expected losses after a Redis wipe looked like bugs.
    w.on('error', (err) => console.error(queueErrorLine(`worker ${w.name}`, err)));
  }
  // Redis is disposable: this scheduler (and the run at start-up) re-enqueues whatever Postgres says is due.
  // The scheduler itself lives in Redis, so each worker process puts it back on every beat: a FLUSHALL
  // can't take away the very thing that recovers from it. Upserting is idempotent.
  const schedule = () => ctx.queues.maintenance.upsertJobScheduler('reconcile', { every: opts.reconcileEverySeconds * 1000 }, { name: 'reconcile', data: { task: 'reconcile' } });
  await schedule();
  await ctx.queues.maintenance.add('reconcile', { task: 'reconcile' }, { jobId: `reconcile-start-${Date.now()}` });
  const beat = setInterval(() => void schedule().catch(() => {}), opts.reconcileEverySeconds * 1000);
  beat.unref();
  const workers: Workers = {
    all,
    mailboxes: mailboxWatchers(ctx, opts.mailbox),
    // close() stops taking jobs and waits for those in progress, so a send in flight finishes before the
    // process goes. Past the drain timeout it stops waiting: BullMQ's close(true) would only hand back the
    // graceful close already pending (a hung relay held it for minutes), so the caller ends the process,
    // and the jobs left behind return to other workers once their locks expire (a send among them stays
    // `sending`, and reconcile reports it uncertain).
    close: async (seconds = opts.drainSeconds ?? 30) => {
      clearInterval(beat);
      // A second call waits on the same close (BullMQ keeps the one pending).
      // The watchers in place now (a test may have swapped them for its own).
      const drained = Promise.all([...all.map((w) => w.close()), workers.mailboxes.close()]).then(() => 'drained' as const);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), seconds * 1000)));
      const result = await Promise.race([drained, timeout]);
      clearTimeout(timer);
      return result;
    },
  };
  return workers;
}
