// Postgres goes away in the middle of a two-step drip and comes back a few seconds later. Runs on its
// own embedded Postgres (other test runs may share the machine's server): the workers must ride it out
// without crashing or printing unhandled errors, finish the run, and send nothing twice.
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/dev/postgres.js';
import { startFanOut } from '../../src/usecases/fanOutSegment.js';
import { countStatus, insertLeads, owed, recordResult, settled, sleep, startScene, tally, traversableTempDir, troubleIn, waitFor, waitForOrExplain, type Scene } from './support.js';

const LEADS = 300;
const DOWN_MS = 4_000;

let pg: EmbeddedPostgres;
let dir: string;
let s: Scene;
beforeAll(async () => {
  // As root the embedded server runs as "postgres", who must be able to walk into the data dir.
  dir = await traversableTempDir('pg-');
  pg = await startEmbeddedPostgres({ dataDir: dir, database: 'chaos' });
  s = await startScene({ serverUrl: pg.url, latencyMs: 20 });
});
afterAll(async () => {
  await s?.close();
  await pg?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

let leadIds: string[] = [];
let sentAtStop = 0;
let survived = false;

// Fails today: both worker processes die with an uncaught TypeError thrown inside the postgres driver
// (postgres/src/connection.js:255 nextWrite: socket.write on a socket closed() already nulled; upstream
// porsager/postgres#1154, #1208, open fixes #1168, #1209). A drizzle transaction pins its connection,
// which is the path #1208 describes.
it('rides out a Postgres restart mid-run: no crash, no unhandled error, the run completes', async () => {
  leadIds = await insertLeads(s.ctx, LEADS, 'end_user', 'pgdown');
  await s.worker('pg-a', { reconcileEverySeconds: 2 });
  await s.worker('pg-b', { reconcileEverySeconds: 2 });
  await startFanOut(s.ctx, 'chaos-drip');
  await waitFor('a third of the first emails sent', async () => (await countStatus(s.db.sql, 'sent')) >= LEADS / 3, 60_000, 50);
  sentAtStop = await countStatus(s.db.sql, 'sent');

  await pg.stop();
  // The outage itself is the fault: a fixed few seconds of no database.
  await sleep(DOWN_MS);
  pg = await startEmbeddedPostgres({ dataDir: dir, database: 'chaos', port: pg.port });

  await waitForOrExplain(s, 'the run complete (or a worker dead)', async () => s.workers.some((w) => !w.alive()) || settled(s, LEADS * 2), 60_000);
  for (const w of s.workers) {
    expect(w.alive(), `${w.name} died:\n${w.stderr().slice(-800)}`).toBe(true);
    expect(troubleIn(w.stderr())).toEqual([]);
  }
  survived = true;
  await check(true);
});

it('after a supervisor restarts whatever died, the run completes and nothing is sent twice', async () => {
  const dead = s.workers.filter((w) => !w.alive());
  for (const w of dead) await s.worker(`${w.name}-restarted`, { reconcileEverySeconds: 2 });
  await waitForOrExplain(s, 'both emails to every lead', () => settled(s, LEADS * 2), 90_000);
  // Recorded here only when the first test could not finish the run.
  await check(!survived, dead.length);
});

async function check(record: boolean, restarted = 0) {
  const t = await tally('Postgres stopped and restarted mid-run', s.db.sql, s.relay, owed(leadIds, 'chaos-drip', ['first', 'second']));
  if (record) {
    recordResult(
      30,
      t,
      `embedded Postgres down ${DOWN_MS / 1000} s with ${sentAtStop} of ${LEADS * 2} sent; 2 worker processes` +
        (restarted ? `; **${restarted} of 2 crashed (uncaught TypeError in the postgres driver) and were restarted (bug)**` : ', both rode it out'),
    );
  }
  expect(t.rows).toHaveLength(LEADS * 2);
  expect(t).toMatchObject({ duplicates: 0, lost: 0, strangers: 0 });
  expect((t.statuses.sent ?? 0) + t.uncertain).toBe(LEADS * 2);
}
