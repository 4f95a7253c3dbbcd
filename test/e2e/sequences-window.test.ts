// A send window through real Redis, Postgres and SMTP: on a Saturday in the lead's zone the email is
// deferred (logged, no message row), and it goes out once the clock reaches Monday 09:00 there and the
// enrollment is woken from Postgres by reconcile.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activity, enrollments, messages } from '../../src/db/schema.js';
import { reconcile } from '../../src/usecases/reconcile.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

// Saturday 7 March 2026, 12:00 in Berlin (CET, UTC+1); the clock runs on from there in real time.
const SATURDAY_NOON_BERLIN = Date.parse('2026-03-07T11:00:00Z');
const MONDAY_0900_BERLIN = new Date('2026-03-09T08:00:00Z');
const t0 = Date.now();
let at = SATURDAY_NOON_BERLIN;
const clock = () => new Date(at + (Date.now() - t0));

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configDir: 'test/fixtures/config/sequences-window', now: clock });
});
afterAll(async () => h?.close());

describe('a send window', () => {
  it('defers on a Saturday in the lead\'s zone and sends on Monday morning there', async () => {
    const res = await h.post('/v1/triggers', {
      type: 'lead.upsert',
      lead: { email: 'jonas@epsilon.test', firstName: 'Jonas', persona: 'champion', timeZone: 'Europe/Berlin', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Epsilon GmbH', domain: 'epsilon.test' } },
    });
    expect(res.status).toBe(200);
    expect(res.json.enrolled.map((e: { sequence: string }) => e.sequence)).toEqual(['weekday-notes']);

    const deferral = await eventually('the deferral', async () => (await h.ctx.db.select().from(activity).where(eq(activity.kind, 'defer')))[0]);
    expect(deferral).toMatchObject({ stepId: 'hello', email: 'jonas@epsilon.test' });
    expect(deferral.data).toMatchObject({ until: MONDAY_0900_BERLIN.toISOString(), why: 'window' });
    const [enrollment] = await h.ctx.db.select().from(enrollments);
    expect(enrollment).toMatchObject({ state: 'active', cursor: 'hello', nextDueAt: MONDAY_0900_BERLIN });
    expect(await h.ctx.db.select().from(messages)).toHaveLength(0);
    // Nothing is due yet: reconcile has nothing to wake.
    expect((await reconcile(h.ctx)).steps).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(h.smtp.mails).toHaveLength(0);

    // Monday 09:00:30 in Berlin. Redis loses its delayed job (it would fire in two real days); Postgres
    // knows the step is due, and reconcile re-enqueues it.
    at = MONDAY_0900_BERLIN.getTime() + 30_000 - (Date.now() - t0);
    await h.ctx.queues.step.drain(true);
    expect((await reconcile(h.ctx)).steps).toBe(1);

    const mail = await eventually('the email', async () => h.smtp.mails[0]);
    expect(mail.envelopeTo).toEqual(['jonas@epsilon.test']);
    const sent = await eventually('the message marked sent', async () => {
      const [m] = await h.ctx.db.select().from(messages);
      return m?.status === 'sent' ? m : null;
    });
    expect(sent.stepId).toBe('hello');
    expect(sent.sentAt!.getTime()).toBeGreaterThanOrEqual(MONDAY_0900_BERLIN.getTime());
    const done = await eventually('the enrollment completes', async () => {
      const [e] = await h.ctx.db.select().from(enrollments);
      return e?.state === 'completed' ? e : null;
    });
    expect(done.exitReason).toBe('completed');
    expect(await h.ctx.db.select().from(activity).where(eq(activity.kind, 'defer'))).toHaveLength(1);
  });
});
