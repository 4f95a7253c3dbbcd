// A fan-out of 3,000 leads whose first page is held by a worker process that is SIGKILLed, then by the
// next one, SIGKILLed too. BullMQ gives a page job back once after a stall and fails it the second time
// ("job stalled more than allowable limit"): before the fan-out was a row in Postgres, that lost the
// whole fan-out (0 of 3,000 enrolled) while the API had answered 200. Now reconcile resumes it from the
// row's checkpoint: every lead is enrolled once. (The sequence's email is a day later: this counts
// enrollments, which is what a fan-out makes; the other faults count sends.)
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFanOut } from '../../src/usecases/fanOutSegment.js';
import { insertLeads, recordResult, startScene, troubleIn, waitFor, waitForOrExplain, type Scene } from './support.js';

const LEADS = 3_000;

let s: Scene;
beforeAll(async () => {
  s = await startScene();
});
afterAll(async () => s?.close());

it(`enrolls each of ${LEADS} leads once after the processes holding a fan-out page are killed twice`, async () => {
  await insertLeads(s.ctx, LEADS, 'economic_buyer', 'fkill');
  // No worker yet: the fan-out is a row and its first page a job waiting in Redis.
  const { fanoutId } = await startFanOut(s.ctx, 'chaos-later');
  const started = Date.now();

  // Hold the fan-out's row lock: whichever process takes the page blocks inside it, mid-page, until we let go.
  let letGo!: () => void;
  let locked!: () => void;
  const isLocked = new Promise<void>((r) => (locked = r));
  const holding = s.db.sql.begin(async (tx) => {
    await tx`select id from fanouts where id = ${fanoutId} for update`;
    locked();
    await new Promise<void>((r) => (letGo = r));
  });
  await isLocked;
  // A backend we have not seen yet waiting on a lock in this database: a page that blocked on the row.
  const seen = new Set<number>();
  const newPageBlocked = async () => {
    const pids = (await s.db.sql<{ pid: number }[]>`select pid from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`).map((r) => r.pid);
    const fresh = pids.filter((p) => !seen.has(p));
    fresh.forEach((p) => seen.add(p));
    return fresh.length > 0;
  };

  const kills: number[] = [];
  for (let i = 1; i <= 2; i++) {
    const victim = await s.worker(`fkill-${i}`, { reconcileEverySeconds: 2 });
    // The first takes the waiting job; the second only once BullMQ has found the first one's job stalled.
    await waitFor(`the page held by victim ${i}`, newPageBlocked, 60_000, 100);
    victim.child.kill('SIGKILL');
    await victim.exited;
    kills.push(Date.now() - started);
  }
  letGo();
  await holding;

  const survivor = await s.worker('fkill-survivor', { reconcileEverySeconds: 2 });
  const fanoutRow = async () => (await s.db.sql<{ status: string; enrolled: number; scanned: number; pages: number }[]>`select status, enrolled, scanned, pages from fanouts where id = ${fanoutId}`)[0]!;
  await waitForOrExplain(s, 'the fan-out done', async () => (await fanoutRow()).status === 'done', 120_000, 250);
  const doneMs = Date.now() - started;

  const row = await fanoutRow();
  const [enrolled] = await s.db.sql<{ n: number; leads: number }[]>`select count(*)::int as n, count(distinct lead_id)::int as leads from enrollments where sequence_id = 'chaos-later'`;
  // The page job failed for good on its second stall: only reconcile, reading the row, brought it back.
  const failedForGood = /\[worker fanout\] job fanout-\S+ failed .*stalled/i.test(survivor.stderr());

  // Counted in enrollments: expected = leads owed one, delivered = leads enrolled, duplicates = second enrollments.
  recordResult(
    11,
    { fault: 'worker processes SIGKILLed twice while holding the same page of a fan-out (enrollments)', expected: LEADS, delivered: enrolled!.leads, duplicates: enrolled!.n - enrolled!.leads, lost: LEADS - enrolled!.leads, uncertain: 0, bounced: 0, strangers: 0, rows: [], statuses: {} },
    `${LEADS}-lead fan-out; its first page held by one \`nurture worker\` after another, both SIGKILLed (at ${(kills[0]! / 1000).toFixed(0)} s and ${(kills[1]! / 1000).toFixed(0)} s)` +
      `${failedForGood ? ', the page job then failed as stalled' : ''}; reconcile resumed it from its row, done ${(doneMs / 1000).toFixed(0)} s after the start (before: 0 of 3,000 enrolled)`,
  );
  expect(row).toEqual({ status: 'done', enrolled: LEADS, scanned: LEADS, pages: 3 });
  expect(enrolled).toEqual({ n: LEADS, leads: LEADS });
  expect(failedForGood).toBe(true);
  expect(troubleIn(survivor.stderr())).toEqual([]);
});
