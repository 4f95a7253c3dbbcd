// Send counters in Redis, under the queue prefix: only counting, never deciding (src/delivery/limits.ts
// decides). A send takes a slot in every counter at once (MULTI), the decision looks at the counts it
// found, and a send that may not go gives its slots back. Two senders racing for the last slot may both
// give theirs back and wait a window: the limit is never exceeded, at worst briefly under-used.
// On a Redis Cluster a MULTI must stay in one slot: every counter key starts with the queue prefix, whose
// hash tag (`{nurture}`) puts them all in the queues' slot.
import type { ConnectionOptions } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import { clusterSafePrefix, isCluster } from '../queue/redis.js';
import type { LimitCounter } from './limits.js';

export interface SendCounters {
  /** Counts one send in each counter; returns each counter's count before it. `now` is the clock the windows were cut by. */
  take(counters: LimitCounter[], now: Date): Promise<number[]>;
  /** Gives back what `take` counted (the send is deferred, or was not ours to send). */
  giveBack(counters: LimitCounter[]): Promise<void>;
  close(): Promise<void>;
}

// Kept a little past the window's end, so a clock a second apart between workers still sees the count.
const GRACE_MS = 5_000;

/** Counters on a connection of their own to the queues' Redis (`connection` is the queues' settings.connection). */
export function redisSendCounters(connection: ConnectionOptions, prefix: string): SendCounters {
  const redis = counterClient(connection);
  const tagged = isCluster(redis) ? clusterSafePrefix(prefix) : prefix;
  const keyOf = (c: LimitCounter) => `${tagged}:delivery:limit:${c.key}`;
  return {
    async take(counters, now) {
      if (!counters.length) return [];
      const m = redis.multi();
      // Relative expiry: the windows follow the engine's clock, which need not be Redis's.
      for (const c of counters) m.incr(keyOf(c)).pexpire(keyOf(c), Math.max(1, c.endsAt - now.getTime()) + GRACE_MS);
      const replies = (await m.exec()) ?? [];
      return counters.map((_, i) => {
        const [err, value] = replies[i * 2] ?? [new Error('no reply'), 0];
        if (err) throw err;
        return Number(value) - 1;
      });
    },
    async giveBack(counters) {
      if (!counters.length) return;
      const m = redis.multi();
      for (const c of counters) m.decr(keyOf(c));
      await m.exec();
    },
    async close() {
      if (redis.status === 'wait') return redis.disconnect();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** A client like the queues' own, from a BullMQ connection built by redisConnection(): a URL, or a Cluster to duplicate. */
function counterClient(connection: ConnectionOptions): Redis | Cluster {
  if (isCluster(connection)) return connection.duplicate(undefined, { lazyConnect: true, redisOptions: { maxRetriesPerRequest: 3 } });
  const url = (connection as { url?: unknown } | null)?.url;
  if (typeof url !== 'string') throw new Error('the send queue has no Redis URL to keep send counters with (REDIS_URL)');
  return new Redis(url, { maxRetriesPerRequest: 3, lazyConnect: true });
}
