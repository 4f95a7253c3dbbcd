// Faults at the relay: temporary refusals, an unknown user in a batch, and a connection that dies after
// the whole message went over DATA. Each fault gets a fresh database, queue prefix and worker process.
import { afterEach, describe, expect, it } from 'vitest';
import { startFanOut } from '../../src/usecases/fanOutSegment.js';
import { insertLeads, owed, recordResult, settled, startScene, tally, troubleIn, waitFor, type Scene } from './support.js';

let scene: Scene | undefined;
afterEach(async () => {
  await scene?.close();
  scene = undefined;
});

describe('the relay misbehaves', () => {
  it('451 to the first attempt of every message, then 250: each is delivered exactly once', async () => {
    scene = await startScene();
    const s = scene;
    s.relay.data = (_id, attempt) => (attempt === 1 ? { code: 451, message: '4.7.1 Try again later: greylisted' } : 'accept');
    const leadIds = await insertLeads(s.ctx, 40, 'economic_buyer', 'greylist');
    const w = await s.worker('greylist');
    await startFanOut(s.ctx, 'chaos-blast');
    // A 4xx is retried with backoff (5 s, jitter 50 %): the second attempt lands within ~5 s.
    await waitFor('every message sent after its refusals', async () => settled(s, 40), 60_000, 250);

    const t = await tally('relay answers 451, then 250', s.db.sql, s.relay, owed(leadIds, 'chaos-blast', ['benchmark']));
    recordResult(40, t, 'every message refused once with 451 4.7.1 before the relay accepts it');
    expect(t.statuses).toEqual({ sent: 40 });
    expect(t.rows.every((r) => r.attempts === 2)).toBe(true);
    expect(s.relay.receipts.filter((r) => r.outcome === 'refused')).toHaveLength(40);
    expect(t).toMatchObject({ delivered: 40, duplicates: 0, lost: 0, uncertain: 0, strangers: 0 });
    expect(troubleIn(w.stderr())).toEqual([]);
  });

  it('550 5.1.1 for one recipient in a batch: that lead bounces and is suppressed, every other message is sent once', async () => {
    scene = await startScene();
    const s = scene;
    const leadIds = await insertLeads(s.ctx, 50, 'economic_buyer', 'batch');
    const dead = 'economic_buyer17@batch.test';
    s.relay.rcpt = (address) => (address === dead ? { code: 550, message: '5.1.1 <economic_buyer17@batch.test>: Recipient address rejected: User unknown' } : null);
    const w = await s.worker('batch');
    await startFanOut(s.ctx, 'chaos-blast');
    await waitFor('the batch at rest', async () => settled(s, 50), 60_000, 250);

    const [deadLead] = await s.db.sql<{ id: string; status: string }[]>`select id, status from leads where email = ${dead}`;
    const t = await tally('relay answers 550 5.1.1 for one recipient', s.db.sql, s.relay, owed(leadIds, 'chaos-blast', ['benchmark']), (id) => id === deadLead!.id);
    recordResult(41, t, '1 of 50 recipients unknown: bounced and suppressed, the other 49 sent');
    expect(t.statuses).toEqual({ sent: 49, bounced: 1 });
    expect(t.rows.find((r) => r.status === 'bounced')!.lead_id).toBe(deadLead!.id);
    // A 5xx is final: one attempt, never retried.
    expect(t.rows.find((r) => r.status === 'bounced')!.attempts).toBe(1);
    expect(deadLead!.status).toBe('bounced');
    expect(await s.db.sql`select reason from suppressions where email = ${dead}`).toHaveLength(1);
    expect(t).toMatchObject({ delivered: 49, duplicates: 0, lost: 0, uncertain: 0, strangers: 0 });
    expect(troubleIn(w.stderr())).toEqual([]);
  });

  // nodemailer reports a close after DATA as { code: 'ECONNECTION', command: 'CONN' }: read from the error
  // alone it looks like "nothing was handed over" and was retried, a second copy (10 of 10 here before
  // the transport began tracking the phase of each send).
  it('the connection drops after DATA, before any reply: those messages end uncertain and are never re-sent', async () => {
    scene = await startScene({ sendingTimeoutSeconds: 3 });
    const s = scene;
    // Every fourth message the relay sees: it takes the whole message, then the line goes dead.
    let seen = 0;
    const dropped = new Set<string>();
    s.relay.data = (id, attempt) => {
      if (attempt === 1 && ++seen % 4 === 0 && id) {
        dropped.add(id.split('@')[0]!);
        return 'drop';
      }
      return 'accept';
    };
    const leadIds = await insertLeads(s.ctx, 40, 'economic_buyer', 'drop');
    const w = await s.worker('drop', { sendingTimeoutSeconds: 3 });
    await startFanOut(s.ctx, 'chaos-blast');
    await waitFor('the run at rest', async () => settled(s, 40), 60_000, 250);

    const t = await tally('relay drops the connection after DATA', s.db.sql, s.relay, owed(leadIds, 'chaos-blast', ['benchmark']));
    recordResult(50, t, `relay took ${dropped.size} messages and hung up without replying`);
    expect(dropped.size).toBe(10);
    // Each dropped message was received once and never again.
    for (const id of dropped) expect(s.relay.receipts.filter((r) => r.rowId === id)).toHaveLength(1);
    const statusOf = new Map(t.rows.map((r) => [r.id, r.status]));
    expect([...dropped].map((id) => statusOf.get(id))).toEqual([...dropped].map(() => 'uncertain'));
    expect(t).toMatchObject({ delivered: 30, duplicates: 0, lost: 0, uncertain: 10, strangers: 0 });
    expect(troubleIn(w.stderr())).toEqual([]);
  });
});
