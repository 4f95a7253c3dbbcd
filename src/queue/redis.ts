// Where Redis is, from REDIS_URL and REDIS_CLUSTER: one server, or the seed nodes of a Redis Cluster
// (`redis://h1:7000,h2:7001,h3:7002`, or REDIS_CLUSTER=1 with one seed). On a Cluster every key a Lua
// script or MULTI touches must hash to one slot: Redis hashes only the part of a key inside its first
// `{…}` (the hash tag) when there is one, so the queue prefix is wrapped in braces there and every
// queue's keys (and the send counters under the same prefix) share one slot.
import { Cluster, type ClusterOptions } from 'ioredis';

export interface RedisNode {
  host: string;
  port: number;
}

export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'cluster'; nodes: RedisNode[]; username?: string; password?: string; tls: boolean };

/** A misconfigured REDIS_URL / REDIS_CLUSTER / QUEUE_PREFIX: the message names the setting. */
export class RedisSettingError extends Error {
  readonly code = 'redis_setting';
}

const SCHEMES = new Set(['redis:', 'rediss:']);

/**
 * REDIS_URL as a target. Several comma-separated nodes are a Cluster; so is one node with
 * `cluster: true` (REDIS_CLUSTER=1: ioredis finds the other nodes from it). Later nodes may be bare
 * `host:port` and take the first one's scheme and credentials.
 */
export function parseRedisTarget(value: string, opts: { cluster?: boolean } = {}): RedisTarget {
  const items = value.split(',').map((s) => s.trim());
  if (!value.trim() || items.some((s) => !s)) throw new RedisSettingError(`REDIS_URL is empty or has an empty entry in its list of nodes: "${value}"`);
  const first = urlOf(items[0]!, null);
  const urls = [first, ...items.slice(1).map((s) => urlOf(s, first))];
  const cluster = opts.cluster ?? urls.length > 1;
  if (!cluster) {
    if (urls.length > 1) throw new RedisSettingError(`REDIS_URL lists ${urls.length} nodes, which is a Redis Cluster, but REDIS_CLUSTER is off: set REDIS_CLUSTER=1 (or leave it unset), or give REDIS_URL one server`);
    return { kind: 'single', url: items[0]! };
  }
  for (const u of urls) {
    if (u.pathname && u.pathname !== '/' && u.pathname !== '/0') {
      throw new RedisSettingError(`REDIS_URL names database ${u.pathname.slice(1)} on ${u.host}, but a Redis Cluster has only database 0: drop "${u.pathname}" from REDIS_URL`);
    }
    if (u.protocol !== first.protocol) throw new RedisSettingError(`REDIS_URL mixes redis:// and rediss:// nodes: a Cluster's nodes all use TLS or none do`);
    if ((u.username || u.password) && (u.username !== first.username || u.password !== first.password)) {
      throw new RedisSettingError('REDIS_URL gives different credentials for different nodes: a Cluster has one set; give them once, on the first node');
    }
  }
  const nodes = urls.map((u) => ({ host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: u.port ? Number(u.port) : 6379 }));
  return {
    kind: 'cluster',
    nodes,
    ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
    ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
    tls: first.protocol === 'rediss:',
  };
}

function urlOf(item: string, first: URL | null): URL {
  const text = item.includes('://') || !first ? item : `${first.protocol}//${item}`;
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new RedisSettingError(`REDIS_URL has "${item}", which is not a Redis address: expected redis://host:port${first ? ' or host:port after the first node' : ''}`);
  }
  if (!SCHEMES.has(u.protocol)) throw new RedisSettingError(`REDIS_URL has "${item}": expected a redis:// or rediss:// address`);
  if (!u.hostname) throw new RedisSettingError(`REDIS_URL has "${item}" without a host`);
  return u;
}

/** The hash tag Redis Cluster hashes a key by (the text inside its first `{…}`), or null when it has none. */
export function hashTagOf(key: string): string | null {
  const open = key.indexOf('{');
  if (open < 0) return null;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : null;
}

/**
 * The prefix as used on a Cluster: as given when it already has a hash tag (`{nurture}`, `acme:{mail}`),
 * else wrapped in braces (`nurture` → `{nurture}`), so each key of every queue hashes to one slot.
 */
export const clusterSafePrefix = (prefix: string): string => (hashTagOf(prefix) === null ? `{${prefix}}` : prefix);

export const isCluster = (client: unknown): client is Cluster => client instanceof Cluster;

function clusterOptions(t: Extract<RedisTarget, { kind: 'cluster' }>, redisOptions: ClusterOptions['redisOptions']): ClusterOptions {
  return {
    redisOptions: {
      ...(t.username ? { username: t.username } : {}),
      ...(t.password ? { password: t.password } : {}),
      ...(t.tls ? { tls: {} } : {}),
      ...redisOptions,
    },
    // Waits for CLUSTER INFO to say cluster_state:ok before commands go out.
    enableReadyCheck: true,
  };
}

/**
 * BullMQ's connection: options for one server, or a Cluster client, which BullMQ shares among queues
 * and duplicates for each worker's connections. Workers block on Redis: BullMQ needs maxRetriesPerRequest
 * null to wait through a restart or a failover.
 */
export function bullConnection(t: RedisTarget): { url: string; maxRetriesPerRequest: null } | Cluster {
  if (t.kind === 'single') return { url: t.url, maxRetriesPerRequest: null };
  return new Cluster(t.nodes, clusterOptions(t, { maxRetriesPerRequest: null }));
}
