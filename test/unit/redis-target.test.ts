// REDIS_URL and REDIS_CLUSTER: one server or a Cluster's seed nodes, and the queue prefix a Cluster needs.
import { Cluster } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { databaseUrlWith, readEnv } from '../../src/config/env.js';
import { redisConnection } from '../../src/queue/index.js';
import { clusterSafePrefix, hashTagOf, parseRedisTarget } from '../../src/queue/redis.js';

describe('REDIS_URL', () => {
  it('is one server when it names one', () => {
    expect(parseRedisTarget('redis://cache:6379')).toEqual({ kind: 'single', url: 'redis://cache:6379' });
    expect(parseRedisTarget('redis://:secret@cache:6379/2')).toEqual({ kind: 'single', url: 'redis://:secret@cache:6379/2' });
  });

  it('is a Cluster when it lists several nodes; later nodes may be bare host:port', () => {
    expect(parseRedisTarget('redis://h1:7000,h2:7001, redis://h3:7002')).toEqual({
      kind: 'cluster',
      nodes: [{ host: 'h1', port: 7000 }, { host: 'h2', port: 7001 }, { host: 'h3', port: 7002 }],
      tls: false,
    });
  });

  it('gives a Cluster the first node’s credentials and TLS, and port 6379 where none is given', () => {
    expect(parseRedisTarget('rediss://app:p%40ss@h1:7000,h2,[::1]:7002')).toEqual({
      kind: 'cluster',
      nodes: [{ host: 'h1', port: 7000 }, { host: 'h2', port: 6379 }, { host: '::1', port: 7002 }],
      username: 'app',
      password: 'p@ss',
      tls: true,
    });
  });

  it('with REDIS_CLUSTER=1 treats a single URL as one seed node of a Cluster', () => {
    expect(parseRedisTarget('redis://h1:7000', { cluster: true })).toEqual({ kind: 'cluster', nodes: [{ host: 'h1', port: 7000 }], tls: false });
  });

  it('refuses what a Cluster cannot be, naming the setting', () => {
    expect(() => parseRedisTarget('redis://h1:7000,h2:7001', { cluster: false })).toThrow(/REDIS_URL lists 2 nodes.*REDIS_CLUSTER/);
    expect(() => parseRedisTarget('redis://h1:7000/3,h2:7001')).toThrow(/REDIS_URL names database 3.*only database 0/);
    expect(() => parseRedisTarget('redis://h1:7000,')).toThrow(/REDIS_URL .*empty entry/);
    expect(() => parseRedisTarget('redis://h1:7000,rediss://h2:7001')).toThrow(/REDIS_URL mixes redis:\/\/ and rediss:\/\//);
    expect(() => parseRedisTarget('redis://a:x@h1:7000,redis://b:y@h2:7001')).toThrow(/REDIS_URL gives different credentials/);
    expect(() => parseRedisTarget('http://h1:7000,h2:7001')).toThrow(/REDIS_URL has "http:\/\/h1:7000": expected a redis:\/\//);
  });

  it('REDIS_CLUSTER reads as a flag and says what it expects', () => {
    expect(readEnv({ REDIS_CLUSTER: '1' }).REDIS_CLUSTER).toBe(true);
    expect(readEnv({ REDIS_CLUSTER: 'no' }).REDIS_CLUSTER).toBe(false);
    expect(readEnv({}).REDIS_CLUSTER).toBeUndefined();
    expect(() => readEnv({ REDIS_CLUSTER: 'maybe' })).toThrow(/REDIS_CLUSTER: expected 1 or 0/);
  });
});

describe('the queue prefix on a Cluster', () => {
  it('finds the hash tag as Redis does: the first {…} with something inside', () => {
    expect(hashTagOf('{nurture}')).toBe('nurture');
    expect(hashTagOf('acme:{mail}:x')).toBe('mail');
    expect(hashTagOf('nurture')).toBeNull();
    expect(hashTagOf('{}nurture')).toBeNull();
    expect(hashTagOf('nur{ture')).toBeNull();
  });

  it('wraps a prefix without a hash tag in braces and keeps one that has it', () => {
    expect(clusterSafePrefix('nurture')).toBe('{nurture}');
    expect(clusterSafePrefix('{nurture}')).toBe('{nurture}');
    expect(clusterSafePrefix('acme:{mail}')).toBe('acme:{mail}');
  });

  it('BullMQ gets options for one server and a Cluster client (maxRetriesPerRequest null) for a Cluster', () => {
    expect(redisConnection('redis://127.0.0.1:1')).toEqual({ url: 'redis://127.0.0.1:1', maxRetriesPerRequest: null });
    const connection = redisConnection('redis://127.0.0.1:1', { cluster: true }) as Cluster;
    connection.disconnect();
    expect(connection).toBeInstanceOf(Cluster);
    expect(connection.options.redisOptions?.maxRetriesPerRequest).toBeNull();
    expect(connection.options.enableReadyCheck).toBe(true);
  });
});

describe('DB_PREPARE', () => {
  it('defaults to prepared statements and, set false, turns them off in the URL every pool is made from', () => {
    expect(readEnv({}).DB_PREPARE).toBe(true);
    expect(readEnv({ DB_PREPARE: 'false' }).DB_PREPARE).toBe(false);
    expect(databaseUrlWith('postgres://u@db/nurture', { prepare: true })).toBe('postgres://u@db/nurture');
    expect(databaseUrlWith('postgres://u@db/nurture', { prepare: false })).toBe('postgres://u@db/nurture?prepare=false');
    expect(databaseUrlWith('postgres://u@db/nurture?sslmode=require', { prepare: false })).toBe('postgres://u@db/nurture?sslmode=require&prepare=false');
  });
});
