// A segmented send to 2,000 leads while one of two worker processes is SIGKILLed ~20 times at random
// moments and restarted. Nothing may arrive twice; nothing may be lost; the only messages whose fate is
// unknown are those the killed process had handed to the relay without hearing back, and nurture must
// say so (`uncertain`) rather than guess.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFanOut } from '../../src/usecases/fanOutSegment.js';
import { countStatus, insertLeads, owed, recordResult, settled, sleep, startScene, stopWorker, tally, troubleIn, waitFor, type Scene, type WorkerProcess } from './support.js';

const LEADS = 2_000;
const KILLS = 20;
const CONCURRENCY = 10;

let s: Scene;
beforeAll(async () => {
  // A relay that takes 50 ms to answer: a real one takes longer, and sends must be in flight to be hit.
  s = await startScene({ latencyMs: 50 });
});
afterAll(async () => s?.close());

it(`sends once to each of ${LEADS} leads while a worker process is SIGKILLed ${KILLS} times`, async () => {
  const leadIds = await insertLeads(s.ctx, LEADS, 'economic_buyer', 'kill');
  const steady = await s.worker('steady', { concurrency: CONCURRENCY });
  let victim: WorkerProcess = await s.worker('victim-0', { concurrency: CONCURRENCY });
  await startFanOut(s.ctx, 'chaos-blast');
  // Kills hit sends and steps. Not the fan-out itself: a fan-out page held by a killed process is only
  // given back after BullMQ's 30 s lock expires, which would stall the whole run (resuming from the
  // checkpoint is the fan-out's own test); so the kills begin once everyone is enrolled.
  await waitFor('all leads enrolled', async () => (await s.db.sql`select 1 from enrollments`).length >= LEADS, 30_000);

  const kills: { at: number; sendingBefore: number; sentBefore: number }[] = [];
  for (let i = 1; i <= KILLS; i++) {
    // A random moment 0.1–0.7 s after the victim is ready (its start-up takes ~1.5 s on top).
    await sleep(100 + Math.random() * 600);
    // Stop once nothing is left for the victim to hold: every lead has a row and none is queued.
    if ((await s.db.sql`select 1 from messages`).length >= LEADS && (await countStatus(s.db.sql, 'queued')) === 0) break;
    const sent = await countStatus(s.db.sql, 'sent');
    const sendingBefore = await countStatus(s.db.sql, 'sending');
    victim.child.kill('SIGKILL');
    kills.push({ at: Date.now(), sendingBefore, sentBefore: sent });
    await victim.exited;
    victim = await s.worker(`victim-${i}`, { concurrency: CONCURRENCY });
  }

  // Done means: a row for every lead, none queued or sending (stuck sends become uncertain after
  // SENDING_TIMEOUT_SECONDS), no enrollment active, no job left that could send.
  await waitFor(
    'every lead sent or uncertain, every queue drained',
    () => settled(s, LEADS),
    // A job the killed process held is only given back once its lock expires (BullMQ: 30 s) and the
    // next stalled-job check (every 30 s) sees it.
    120_000,
    500,
  );

  const t = await tally('worker process SIGKILLed mid-run', s.db.sql, s.relay, owed(leadIds, 'chaos-blast', ['benchmark']));
  recordResult(10, t, `${kills.length} SIGKILLs of 1 of 2 worker processes (concurrency ${CONCURRENCY}) during a ${LEADS}-lead fan-out; uncertain = sends the killed process had in flight`);
  console.log(`[chaos] kills: ${JSON.stringify(kills.map((k) => ({ sentBefore: k.sentBefore, sendingBefore: k.sendingBefore })))}`);

  expect(kills.length).toBeGreaterThanOrEqual(15);
  expect(t.rows).toHaveLength(LEADS);
  expect(t).toMatchObject({ duplicates: 0, lost: 0, strangers: 0 });
  // Every row ends sent or uncertain; every sent one the relay accepted (tally counts a sent row the
  // relay never accepted as lost). An uncertain one may have arrived (the relay said 250 just before the
  // kill) or not: that is what uncertain means.
  expect((t.statuses.sent ?? 0) + t.uncertain).toBe(LEADS);
  expect(t.delivered).toBeGreaterThanOrEqual(t.statuses.sent ?? 0);

  // Every uncertain message was claimed shortly before a kill, and no kill left more than the killed
  // process could have had in flight.
  const uncertain = await s.db.sql<{ id: string; sending_at: Date }[]>`select id, sending_at from messages where status = 'uncertain'`;
  const perKill = new Map<number, number>();
  for (const m of uncertain) {
    const kill = kills.find((k) => m.sending_at.getTime() <= k.at && k.at - m.sending_at.getTime() < 10_000);
    expect(kill, `uncertain message ${m.id} (claimed ${m.sending_at.toISOString()}) matches no kill`).toBeDefined();
    perKill.set(kill!.at, (perKill.get(kill!.at) ?? 0) + 1);
  }
  for (const n of perKill.values()) expect(n).toBeLessThanOrEqual(CONCURRENCY);
  // An uncertain message is never sent again on its own: at most the one copy the killed process got out.
  for (const m of uncertain) expect(s.relay.receipts.filter((r) => r.rowId === m.id && r.outcome !== 'refused').length).toBeLessThanOrEqual(1);

  expect(troubleIn(steady.stderr())).toEqual([]);
  await stopWorker(victim);
  expect((await victim.exited).code).toBe(0);
});
