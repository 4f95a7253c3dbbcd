import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { pingRedis } from '../../src/dev/probe.js';
import { startEmbeddedPostgres } from '../../src/dev/postgres.js';
import { startEmbeddedRedis } from '../../src/dev/redis.js';

export interface TestServices {
  databaseUrl: string;
  redisUrl: string;
  stop(): Promise<void>;
}

const LOCAL_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const LOCAL_REDIS_URL = 'redis://127.0.0.1:6379';

/**
 * Postgres and Redis for the test run, first found of: TEST_DATABASE_URL / TEST_REDIS_URL, servers already
 * answering on 127.0.0.1:5432 / 6379, or embedded ones in a temp dir (so a fresh machine needs nothing).
 */
export async function testServices(env: Record<string, string | undefined> = process.env): Promise<TestServices> {
  const stops: Array<() => Promise<void>> = [];
  let tempDir: Promise<string> | undefined;
  const dataDir = () => (tempDir ??= mkdtemp(path.join(os.tmpdir(), 'nurture-test-')));
  const stop = async () => {
    for (const stopOne of stops.reverse()) await stopOne();
    if (tempDir) await rm(await tempDir, { recursive: true, force: true });
  };

  // allSettled: when one fails, wait for the other to finish starting so stop() can reach it.
  const [database, redis] = await Promise.allSettled([
    (async () => {
      if (env.TEST_DATABASE_URL) return env.TEST_DATABASE_URL;
      if (await postgresAnswers(LOCAL_POSTGRES_URL)) return LOCAL_POSTGRES_URL;
      const pg = await startEmbeddedPostgres({ dataDir: await dataDir(), database: 'nurture_test' });
      stops.push(pg.stop);
      return pg.url;
    })(),
    (async () => {
      if (env.TEST_REDIS_URL) return env.TEST_REDIS_URL;
      if ((await pingRedis('127.0.0.1', 6379)) === '+PONG') return LOCAL_REDIS_URL;
      const embedded = await startEmbeddedRedis({ dataDir: await dataDir() });
      stops.push(embedded.stop);
      return embedded.url;
    })(),
  ]);
  if (database.status === 'rejected' || redis.status === 'rejected') {
    await stop();
    throw database.status === 'rejected' ? database.reason : (redis as PromiseRejectedResult).reason;
  }
  return { databaseUrl: database.value, redisUrl: redis.value, stop };
}

async function postgresAnswers(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 });
  }
}
