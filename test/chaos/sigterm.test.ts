// SIGTERM to a worker process mid-run (a deploy, a scale-down): it finishes the sends in its hands and
// exits 0 promptly, leaves no job active (none to be found stalled later), and the run completes after a
// restart with nothing twice and nothing uncertain.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFanOut } from '../../src/usecases/fanOutSegment.js';
import { countStatus, insertLeads, owed, recordResult, settled, startScene, tally, troubleIn, waitFor, type Scene } from './support.js';

const LEADS = 300;
const DRAIN_LIMIT_MS = 10_000;

let s: Scene;
beforeAll(async () => {
  // A slow relay (150 ms a message), so that the signal lands with sends in flight.
  s = await startScene({ latencyMs: 150 });
});
afterAll(async () => s?.close());

it('drains on SIGTERM: exits 0 within the limit, no job left active, the run completes after a restart', async () => {
  const leadIds = await insertLeads(s.ctx, LEADS, 'economic_buyer', 'term');
  const first = await s.worker('term-1', { concurrency: 10 });
  await startFanOut(s.ctx, 'chaos-blast');
  await waitFor('a third of the run sent', async () => (await countStatus(s.db.sql, 'sent')) >= LEADS / 3, 60_000);
  const inFlight = await countStatus(s.db.sql, 'sending');

  const signalled = Date.now();
  first.child.kill('SIGTERM');
  const exit = await first.exited;
  const drainMs = exit.at - signalled;
  expect(exit).toMatchObject({ code: 0, signal: null });
  expect(drainMs).toBeLessThan(DRAIN_LIMIT_MS);
  // Nothing held: no job active (a killed holder would leave them there until found stalled), and no
  // message left half-sent.
  expect(await s.jobCount('active')).toBe(0);
  expect(await countStatus(s.db.sql, 'sending')).toBe(0);
  const sentAtStop = await countStatus(s.db.sql, 'sent');
  expect(sentAtStop).toBeLessThan(LEADS);

  const second = await s.worker('term-2', { concurrency: 10 });
  await waitFor('the run complete after the restart', () => settled(s, LEADS), 90_000, 250);
  const t = await tally('worker process SIGTERMed mid-run, then restarted', s.db.sql, s.relay, owed(leadIds, 'chaos-blast', ['benchmark']));
  recordResult(70, t, `drained and exited 0 in ${(drainMs / 1000).toFixed(1)} s with ${inFlight} sends in flight; ${sentAtStop} sent before the stop`);
  expect(t.statuses).toEqual({ sent: LEADS });
  expect(t.rows.every((r) => r.attempts === 1)).toBe(true);
  expect(t).toMatchObject({ delivered: LEADS, duplicates: 0, lost: 0, uncertain: 0, strangers: 0 });
  expect(first.stdout()).toContain('SIGTERM: finishing jobs in progress');
  expect(troubleIn(first.stderr())).toEqual([]);
  expect(troubleIn(second.stderr())).toEqual([]);
});
