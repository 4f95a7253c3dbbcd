// Queue names, job payloads (one zod schema each) and deterministic job ids. Redis holds work in
// flight only: Postgres can rebuild every job here, and the ids make a second add a no-op.
import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { z } from 'zod';
import { bullConnection, clusterSafePrefix, isCluster, parseRedisTarget } from './redis.js';

export const QUEUE_NAMES = ['step', 'send', 'fanout', 'outbound', 'maintenance', 'settle', 'mailbox'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

export const StepJob = z.object({ enrollmentId: z.uuid(), revision: z.number().int().nonnegative() });
export type StepJob = z.infer<typeof StepJob>;
/**
 * Wakes every enrollment due within one second (the second ending at `second`, in Unix seconds), on the
 * step queue under the name 'wake': steps planned ahead share a job per second instead of one each. A
 * second with more steps than one job takes goes on in a job that starts `after` the last one done.
 * `again` marks reconcile's sweep of a second whose steps are overdue (the Unix second it was added).
 */
export const WakeJob = z.object({ second: z.number().int().positive(), after: z.object({ at: z.string(), id: z.uuid() }).optional(), again: z.number().int().positive().optional() });
export type WakeJob = z.infer<typeof WakeJob>;
export const SendJob = z.object({ messageId: z.uuid() });
export type SendJob = z.infer<typeof SendJob>;
/** Only the fan-out's id: its checkpoint lives in its Postgres row, never in Redis. */
export const FanoutJob = z.object({ fanoutId: z.uuid() });
export type FanoutJob = z.infer<typeof FanoutJob>;
export const OutboundJob = z.object({ eventId: z.uuid() });
export type OutboundJob = z.infer<typeof OutboundJob>;
export const MaintenanceJob = z.object({ task: z.enum(['reconcile']) });
/** Count a lead's provisional opens and clicks whose verdict can no longer change. */
export const SettleJob = z.object({ leadId: z.uuid() });
export type SettleJob = z.infer<typeof SettleJob>;
/** File the copy of a message sent through a rep's mailbox in their Sent folder (the bytes wait in Postgres). */
export const MailboxJob = z.object({ task: z.literal('copy_to_sent'), messageId: z.uuid() });
export type MailboxJob = z.infer<typeof MailboxJob>;

// BullMQ refuses custom ids that contain ':' or are integers.
export const stepJobId = (j: StepJob) => `step-${j.enrollmentId}-${j.revision}`;
export const wakeJobId = (j: WakeJob) => `wake-${j.second}${j.again ? `-again-${j.again}` : ''}${j.after ? `-${j.after.id}` : ''}`;
export const sendJobId = (j: SendJob) => `send-${j.messageId}`;
export const outboundJobId = (j: OutboundJob) => `outbound-${j.eventId}`;
export const mailboxJobId = (j: MailboxJob) => `sentcopy-${j.messageId}`;
/** One job per lead and due time (whole seconds): a burst of hits schedules one settle, not one each. */
export const settleJobId = (j: SettleJob, at: Date) => `settle-${j.leadId}-${Math.ceil(at.getTime() / 1000)}`;
/** One job per fan-out and checkpoint: a re-add while that page's job exists is a no-op, and the job for
 * the next page (a new checkpoint) never collides with the one still finishing this page. */
export const fanoutJobId = (fanoutId: string, afterLeadId: string | null) => `fanout-${fanoutId}-${afterLeadId ?? 'start'}`;

export interface QueueSettings {
  /** From redisConnection(): a Cluster client given here belongs to the queues, and their close() ends it. */
  connection: ConnectionOptions;
  /**
   * Key prefix: tests use a fresh one per file, production the default. On a Redis Cluster the queues use
   * it wrapped in braces unless it already has a hash tag (`nurture` → `{nurture}`): their settings say which.
   */
  prefix: string;
}

export type Queues = Record<QueueName, Queue> & { settings: QueueSettings; close(): Promise<void> };

/** The send queue's retries follow the send worker's schedule (see src/delivery/policy.ts retryDelay). */
export const SEND_BACKOFF = 'send-retry';
const SEND_ATTEMPTS_CAP = 100_000;

const KEEP = { removeOnComplete: { age: 3600, count: 10_000 }, removeOnFail: { age: 7 * 86_400 } } satisfies JobsOptions;

/** REDIS_URL (a list of nodes, or `cluster: true` from REDIS_CLUSTER, is a Redis Cluster) as BullMQ's connection. */
export function redisConnection(url: string, opts: { cluster?: boolean } = {}): ConnectionOptions {
  return bullConnection(parseRedisTarget(url, opts)) as ConnectionOptions;
}

export function createQueues(given: QueueSettings): Queues {
  const cluster = isCluster(given.connection) ? given.connection : null;
  const settings: QueueSettings = { ...given, prefix: cluster ? clusterSafePrefix(given.prefix) : given.prefix };
  const make = (name: QueueName, defaults: JobsOptions) =>
    new Queue(name, { connection: settings.connection, prefix: settings.prefix, defaultJobOptions: { ...KEEP, ...defaults } });
  const queues = {
    // A step job that used up its attempts is removed: the enrollment is still due in Postgres, and
    // reconcile may only re-add a job whose id is free.
    step: make('step', { attempts: 10, backoff: { type: 'exponential', delay: 1_000 }, removeOnFail: true }),
    // SMTP 4xx and dropped connections before DATA retry with backoff; 5xx ends the job unrecoverably.
    // How long and how often is the send worker's retry schedule (its backoffStrategy), which spans
    // sending.maxRetryAge: the attempts here are only a cap that schedule never reaches.
    send: make('send', { attempts: SEND_ATTEMPTS_CAP, backoff: { type: SEND_BACKOFF } }),
    // A page job that fails or stalls for good is removed, and one that is done too: the fan-out's row
    // still says where it got to, and reconcile may only re-add a job whose id is free.
    fanout: make('fanout', { attempts: 10, backoff: { type: 'exponential', delay: 1_000 }, removeOnComplete: true, removeOnFail: true }),
    // The CRM may be down for a while: retry for about a day before giving up (reconcile tries again later).
    // Removed when it gives up, so the next reconcile (which finds the undelivered outbox row) can add it again.
    outbound: make('outbound', { attempts: 12, backoff: { type: 'exponential', delay: 10_000, jitter: 0.3 }, removeOnFail: true }),
    maintenance: make('maintenance', { attempts: 1 }),
    // Removed once done, so a later settle for the same lead and second (reconcile's) is never a no-op.
    settle: make('settle', { attempts: 10, backoff: { type: 'exponential', delay: 1_000 }, removeOnComplete: true, removeOnFail: true }),
    // A mailbox that is down for a while: retry for about a day; removed when it gives up, so reconcile
    // (which finds the copy still unfiled in Postgres) can add it again.
    mailbox: make('mailbox', { attempts: 12, backoff: { type: 'exponential', delay: 5_000, jitter: 0.3 }, removeOnComplete: true, removeOnFail: true }),
  };
  for (const [name, q] of Object.entries(queues)) q.on('error', (err) => console.error(queueErrorLine(`queue ${name}`, err)));
  return {
    ...queues,
    settings,
    close: async () => {
      await Promise.all(Object.values(queues).map((q) => q.close()));
      // BullMQ leaves a client it was given open: the queues shared this one (workers use duplicates).
      if (cluster) await cluster.quit().catch(() => cluster.disconnect());
    },
  };
}

export async function enqueueStep(queues: Queues, job: StepJob, at: Date | null, now: Date): Promise<void> {
  const delay = at ? Math.max(0, at.getTime() - now.getTime()) : 0;
  await queues.step.add('step', job, { jobId: stepJobId(job), delay });
}

export async function enqueueSteps(queues: Queues, jobs: { job: StepJob; at: Date | null }[], now: Date): Promise<void> {
  if (!jobs.length) return;
  await queues.step.addBulk(
    jobs.map(({ job, at }) => ({ name: 'step', data: job, opts: { jobId: stepJobId(job), delay: at ? Math.max(0, at.getTime() - now.getTime()) : 0 } })),
  );
}

/**
 * How far ahead a step's wake job must fire, when the step's job is added, for the step to share it. A
 * wake job sweeps its second once, at the second's end: a step written into that second after the sweep
 * passed would be missed (its add a no-op while the sweep's job exists), so a step whose wake is sooner
 * gets its own step job. It is the wake's time that counts, not the step's: a step due 400 ms from now
 * at .700 falls in the second after next, whose wake is 1.3 s away. The margin is for clocks: the sweep
 * starts by the clock of the worker that promotes it.
 */
export const WAKE_AHEAD_MS = 1_000;

/** The second (Unix seconds) whose wake job takes a step due at `at`: the first whole second not before it. */
export const wakeSecondOf = (at: Date): number => Math.ceil(at.getTime() / 1000);

/**
 * Jobs for steps due at their times: a step due now, or whose second's wake fires within WAKE_AHEAD_MS,
 * gets its own step job; one due later its second's wake job, shared with every other step due in it.
 */
export async function enqueueDue(queues: Queues, due: { job: StepJob; at: Date | null }[], now: Date): Promise<void> {
  const own: typeof due = [];
  const seconds = new Set<number>();
  for (const d of due) {
    if (d.at && wakeSecondOf(d.at) * 1000 - now.getTime() > WAKE_AHEAD_MS) seconds.add(wakeSecondOf(d.at));
    else own.push(d);
  }
  await Promise.all([enqueueSteps(queues, own, now), enqueueWakes(queues, [...seconds], now)]);
}

/** Kept once done like step jobs: a wake's second is past by then, so no later add can collide with it. */
export async function enqueueWakes(queues: Queues, seconds: number[], now: Date): Promise<void> {
  if (!seconds.length) return;
  await queues.step.addBulk(seconds.map((second) => ({ name: 'wake', data: { second } satisfies WakeJob, opts: { jobId: wakeJobId({ second }), delay: Math.max(0, second * 1000 - now.getTime()) } })));
}

/**
 * Sweeps again, now, the seconds whose steps reconcile found overdue: Redis lost their wake, a sweep
 * missed them, or a crowded second's sweep is still on its way. A job per second, not a step job per
 * enrollment (a crowd of a hundred thousand is then a few jobs, not as many as it has people), new at
 * each reconcile (a sweep already done must not make the add a no-op). No retries of its own: the next
 * reconcile is its retry.
 */
export async function enqueueOverdue(queues: Queues, seconds: number[], now: Date): Promise<void> {
  if (!seconds.length) return;
  const again = Math.floor(now.getTime() / 1000);
  await queues.step.addBulk(seconds.map((second) => ({ name: 'wake', data: { second, again } satisfies WakeJob, opts: { jobId: wakeJobId({ second, again }), attempts: 1 } })));
}

/** The rest of a second's steps, taken up at once by whichever worker is free. */
export async function enqueueWakeFrom(queues: Queues, job: WakeJob & { after: NonNullable<WakeJob['after']> }): Promise<void> {
  await queues.step.add('wake', job, { jobId: wakeJobId(job) });
}

export async function enqueueSends(queues: Queues, jobs: SendJob[]): Promise<void> {
  if (!jobs.length) return;
  await queues.send.addBulk(jobs.map((job) => ({ name: 'send', data: job, opts: { jobId: sendJobId(job) } })));
}

export async function enqueueOutbound(queues: Queues, jobs: OutboundJob[]): Promise<void> {
  if (!jobs.length) return;
  await queues.outbound.addBulk(jobs.map((job) => ({ name: 'outbound', data: job, opts: { jobId: outboundJobId(job) } })));
}

/** Settles each lead's hits once they are due (never before: a job that runs early would settle nothing). */
export async function enqueueSettles(queues: Queues, jobs: { job: SettleJob; at: Date }[], now: Date): Promise<void> {
  if (!jobs.length) return;
  const unique = new Map(jobs.map((j) => [settleJobId(j.job, j.at), j]));
  await queues.settle.addBulk(
    [...unique].map(([jobId, { job, at }]) => ({ name: 'settle', data: job, opts: { jobId, delay: Math.max(0, Math.ceil(at.getTime() / 1000) * 1000 - now.getTime()) } })),
  );
}

/** Puts a fan-out's next page on the queue (a no-op while a job for that checkpoint exists). */
export async function enqueueFanout(queues: Queues, fanoutId: string, afterLeadId: string | null): Promise<void> {
  const job: FanoutJob = { fanoutId };
  await queues.fanout.add('fanout', job, { jobId: fanoutJobId(fanoutId, afterLeadId) });
}

/**
 * One line for an error a queue or worker reports. After Redis loses its data (a restart, a FLUSHALL) BullMQ
 * finds jobs it held gone or no longer its own, and the connection drops while Redis restarts: both are
 * expected, and Postgres (reconcile) puts back whatever is still due. They are said plainly; anything else
 * is an error, with its stack.
 */
export function queueErrorLine(where: string, err: Error): string {
  if (/Missing lock for job|Lock mismatch for job|Missing key for job|could not renew lock/i.test(err.message)) {
    return `[${where}] a job Redis no longer holds as ours (${err.message}): expected after Redis lost its data; reconcile adds it again if it is still due`;
  }
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (/^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTCONN)$/.test(code) || /Connection is closed|connect ECONNREFUSED|read ECONNRESET/.test(err.message)) {
    return `[${where}] Redis connection: ${err.message}; reconnecting`;
  }
  return `[${where}] ${err.stack ?? String(err)}`;
}
