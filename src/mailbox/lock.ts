// Exactly one watcher per mailbox across every worker process: a lock in Redis per mailbox, with an expiry,
// renewed while held. A holder that dies stops renewing, the key expires, and another process takes over.
// Only the holder's token can renew or release it (a check-and-act in one Lua script, one key: fine on a
// Redis Cluster too).
import type { ConnectionOptions } from 'bullmq';
import { Redis, type Cluster } from 'ioredis';
import { isCluster } from '../queue/redis.js';

const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export interface MailboxLocks {
  /** True when this process now holds (or already held) the mailbox's lock. */
  acquire(address: string): Promise<boolean>;
  /** True while still held; false once lost (expired and taken, or Redis lost it). */
  renew(address: string): Promise<boolean>;
  release(address: string): Promise<void>;
  /** Who holds it now (a holder id), or null. */
  holder(address: string): Promise<string | null>;
  close(): Promise<void>;
}

/** `connection` is the queues' (settings.connection): a URL, or a Cluster client to duplicate. */
export function redisMailboxLocks(connection: ConnectionOptions, prefix: string, holderId: string, ttlMs: number): MailboxLocks {
  const redis: Redis | Cluster = isCluster(connection)
    ? connection.duplicate(undefined, { lazyConnect: true, redisOptions: { maxRetriesPerRequest: 2 } })
    : new Redis((connection as { url: string }).url, { maxRetriesPerRequest: 2, lazyConnect: true });
  redis.on('error', () => {});
  const key = (address: string) => `${prefix}:mailbox-watch:${address}`;
  return {
    async acquire(address) {
      const ok = await redis.set(key(address), holderId, 'PX', ttlMs, 'NX');
      if (ok === 'OK') return true;
      return (await redis.eval(RENEW, 1, key(address), holderId, ttlMs)) === 1;
    },
    async renew(address) {
      return (await redis.eval(RENEW, 1, key(address), holderId, ttlMs)) === 1;
    },
    async release(address) {
      await redis.eval(RELEASE, 1, key(address), holderId);
    },
    async holder(address) {
      return redis.get(key(address));
    },
    async close() {
      if (redis.status === 'wait') return redis.disconnect();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
