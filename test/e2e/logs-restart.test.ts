// `nurture logs -f` outlives the database going away: it says it is waiting, then resumes after the last
// event it printed, printing each event once, including one whose transaction committed after a later one.
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logs } from '../../src/cli/logs.js';
import { logActivity } from '../../src/db/activity.js';
import { connectDatabase, migrateDatabase } from '../../src/db/client.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/dev/postgres.js';
import { eventually } from '../support/harness.js';

// Budgets from the follower's own pace: it polls every 2 s (LISTEN aside), a connection attempt may take
// its 10 s connect timeout, and after an outage it retries at most every 10 s.
const NOTICE_LOSS_MS = 2_000 + 10_000 + 3_000;
const RESUME_MS = 10_000 + 2_000 + 10_000 + 3_000;
// Postgres's own limit to report ready.
const RESTART_MS = 60_000;

let tempRoot: string;
let pg: EmbeddedPostgres;
const DATABASE = 'logs_restart';

beforeAll(async () => {
  tempRoot = await mkdtemp(path.join(os.tmpdir(), 'nurture-logs-restart-'));
  await chmod(tempRoot, 0o711); // as root the server runs as "postgres", who must pass through
  pg = await startEmbeddedPostgres({ dataDir: tempRoot, database: DATABASE });
  await migrateDatabase(pg.url);
});
afterAll(async () => {
  await pg?.stop();
  await rm(tempRoot, { recursive: true, force: true });
});

function follow() {
  const lines: string[] = [];
  const warnings: string[] = [];
  const stop = new AbortController();
  let following!: () => void;
  const ready = new Promise<void>((resolve) => (following = resolve));
  const done = logs({ databaseUrl: pg.url, follow: true, json: true, limit: 0, signal: stop.signal, write: (l) => lines.push(l), warn: (w) => warnings.push(w), onFollowing: following });
  return {
    /** Resolves once the follower has read where it starts: an event added after this is one it prints. */
    ready,
    printed: () => lines.map((l) => (JSON.parse(l) as { detail: string }).detail),
    warnings,
    stop: async () => {
      stop.abort();
      await done;
    },
  };
}

async function add(detail: string): Promise<void> {
  const { db, close } = connectDatabase(pg.url, { max: 1 });
  try {
    await logActivity(db, [{ kind: 'note', detail }]);
  } finally {
    await close();
  }
}

describe('nurture logs -f', () => {
  it('resumes after its connection is terminated and after a server restart, printing each event once', { timeout: NOTICE_LOSS_MS + RESTART_MS + RESUME_MS * 3 }, async () => {
    const f = follow();
    try {
      await f.ready;
      await add('before');
      await eventually('the first event', async () => f.printed().includes('before'), RESUME_MS);

      const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
      await admin`select pg_terminate_backend(pid) from pg_stat_activity where pid <> pg_backend_pid() and datname = current_database()`;
      await admin.end();
      await add('after a terminated connection');
      await eventually('the event after the termination', async () => f.printed().includes('after a terminated connection'), RESUME_MS);

      const port = pg.port;
      await pg.stop();
      await eventually('waiting, said on stderr', async () => f.warnings.some((w) => /lost the database .*retrying in/.test(w)), NOTICE_LOSS_MS);
      pg = await startEmbeddedPostgres({ dataDir: tempRoot, database: DATABASE, port });
      await add('after a restart');
      await eventually('the event after the restart', async () => f.printed().includes('after a restart'), RESUME_MS);
      expect(f.warnings.some((w) => /database is back; resuming after event #\d+/.test(w))).toBe(true);
    } finally {
      await f.stop();
    }
    expect(f.printed()).toEqual(['before', 'after a terminated connection', 'after a restart']);
  });

  it('prints an event whose transaction commits after a later one', { timeout: RESUME_MS * 3 }, async () => {
    const f = follow();
    await f.ready;
    const slow = postgres(pg.url, { max: 1, onnotice: () => {} });
    try {
      let inserted!: () => void;
      let release!: () => void;
      const insertedYet = new Promise<void>((resolve) => (inserted = resolve));
      const held = new Promise<void>((resolve) => (release = resolve));
      const tx = slow.begin(async (t) => {
        await t`insert into activity (kind, detail) values ('note', 'early id, late commit')`;
        inserted();
        await held;
        await t`select pg_notify('nurture_activity', '')`;
      });
      await insertedYet;
      await add('later id, early commit');
      await eventually('the later id', async () => f.printed().includes('later id, early commit'), RESUME_MS);
      release();
      await tx;
      await eventually('the earlier id, committed late', async () => f.printed().includes('early id, late commit'), RESUME_MS);
    } finally {
      await f.stop();
      await slow.end();
    }
    expect(f.printed()).toEqual(['later id, early commit', 'early id, late commit']);
  });
});
