// The relay is gone (its port refuses connections) for longer than the old retry schedule lasted, in
// compressed time: `sending.maxRetryAge: 20s` stands for a day and `sending.maxRetryDelay: 1s` for the
// ten-minute ceiling. Eight attempts with a 5 s exponential backoff used to end within ~635 s, so a
// ten-minute outage failed every due message for good. Now the schedule spans the retry age: each message
// is tried well past eight times, sent once the relay is back, none failed and none twice. And `failed`
// means the age ran out: with the relay gone for good, a message fails only after the 20 s, and says so.
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFanOut } from '../../src/usecases/fanOutSegment.js';
import { insertLeads, owed, recordResult, REPO, settled, startScene, tally, troubleIn, waitFor, waitForOrExplain, type Scene, type WorkerProcess } from './support.js';

const LEADS = 40;
const OLD_ATTEMPTS = 8;

let s: Scene;
let w: WorkerProcess;
beforeAll(async () => {
  s = await startScene({ configDir: path.join(REPO, 'test/fixtures/config/chaos-retry') });
  w = await s.worker('outage', { concurrency: 10 });
});
afterAll(async () => s?.close());

const attempts = async () => (await s.db.sql<{ n: number; min: number | null; max: number | null; failed: number }[]>`select count(*)::int as n, min(attempts)::int as min, max(attempts)::int as max, count(*) filter (where status = 'failed')::int as failed from messages`)[0]!;

it('keeps retrying through an outage longer than the old schedule, then sends each message once', async () => {
  const leadIds = await insertLeads(s.ctx, LEADS, 'economic_buyer', 'outage');
  await s.relay.down();
  const downAt = Date.now();
  await startFanOut(s.ctx, 'chaos-blast');
  // Past where the old schedule gave up: every message tried more than eight times, none failed.
  await waitForOrExplain(s, `every message tried more than ${OLD_ATTEMPTS} times`, async () => {
    const a = await attempts();
    return a.n === LEADS && (a.min ?? 0) > OLD_ATTEMPTS + 1;
  }, 30_000);
  const during = await attempts();
  expect(during.failed).toBe(0);
  await s.relay.up();
  const outageMs = Date.now() - downAt;

  await waitForOrExplain(s, 'every message sent once the relay is back', () => settled(s, LEADS), 30_000);
  const t = await tally('relay down for longer than the old retry schedule (compressed time)', s.db.sql, s.relay, owed(leadIds, 'chaos-blast', ['benchmark']));
  const after = await attempts();
  recordResult(
    42,
    t,
    `relay refused connections for ${(outageMs / 1000).toFixed(0)} s with sending.maxRetryAge 20s and maxRetryDelay 1s (a day and 10 min, compressed); ` +
      `each message tried ${after.min}–${after.max} times (the old schedule stopped at ${OLD_ATTEMPTS}), none failed`,
  );
  expect(t.statuses).toEqual({ sent: LEADS });
  expect(t).toMatchObject({ delivered: LEADS, duplicates: 0, lost: 0, uncertain: 0, strangers: 0 });
  // Nothing reached the relay while it was down: each message arrived once, on its last attempt.
  expect(s.relay.receipts).toHaveLength(LEADS);
  expect(troubleIn(w.stderr())).toEqual([]);
});

it('fails a message only once the retry age has run out, and says so', async () => {
  const extra = await insertLeads(s.ctx, 3, 'economic_buyer', 'gone');
  await s.relay.down();
  await startFanOut(s.ctx, 'chaos-blast');
  const failed = async () => s.db.sql<{ error: string; queued_at: Date; attempts: number }[]>`select error, queued_at, attempts from messages where lead_id in ${s.db.sql(extra)} and status = 'failed'`;
  const rows = await waitFor('the relay-gone messages failed', async () => ((await failed()).length === 3 ? failed() : null), 45_000, 250);
  const [first] = await s.db.sql<{ at: Date }[]>`select min(at) as at from activity where kind = 'retry' and lead_id in ${s.db.sql(extra)}`;
  console.log(`[chaos] a message whose relay never came back: ${rows[0]!.error}`);
  for (const r of rows) {
    expect(r.error).toMatch(/^retry age ran out: still failing (2\d|3\d) s after the first failure, \d+ attempts \(sending\.maxRetryAge 20 s\); last reply: /);
    expect(r.attempts).toBeGreaterThan(OLD_ATTEMPTS);
  }
  const [lastFail] = await s.db.sql<{ at: Date }[]>`select max(at) as at from activity where kind = 'failed' and lead_id in ${s.db.sql(extra)}`;
  expect(lastFail!.at.getTime() - first!.at.getTime()).toBeGreaterThanOrEqual(20_000);
  await s.relay.up();
});
