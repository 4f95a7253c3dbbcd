// A step deferred to its window, on a Saturday, through real Redis, Postgres and SMTP: the log says when it
// goes out in the lead's own time; an operator can send it now with a reason; a zone the CRM changes
// plans it again.
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activity, enrollments, leads } from '../../src/db/schema.js';
import { reconcile } from '../../src/usecases/reconcile.js';
import { releaseDeferred } from '../../src/usecases/releaseStep.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

// Saturday 7 March 2026, 12:00 in Berlin (CET, UTC+1); the clock runs on from there in real time.
const SATURDAY_NOON_BERLIN = Date.parse('2026-03-07T11:00:00Z');
const MONDAY_0900_BERLIN = new Date('2026-03-09T08:00:00Z');
const t0 = Date.now();
const clock = () => new Date(SATURDAY_NOON_BERLIN + (Date.now() - t0));

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configDir: 'test/fixtures/config/sequences-window', now: clock });
});
afterAll(async () => h?.close());

const upsert = (email: string, timeZone: string) =>
  h.post('/v1/triggers', {
    type: 'lead.upsert',
    lead: { email, firstName: email.split('@')[0], persona: 'champion', timeZone, owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: `Co ${email}`, domain: email.split('@')[1] } },
  });
const enrollmentOf = async (email: string) => {
  const rows = await h.ctx.db.select({ e: enrollments }).from(enrollments).innerJoin(leads, eq(leads.id, enrollments.leadId)).where(eq(leads.email, email));
  return rows[0]!.e;
};

describe('a step deferred to its window, any day of the week', () => {
  it("says when it will go out in the lead's own time, and an operator can send it now, with a reason", async () => {
    expect((await upsert('lea@zeta.test', 'Europe/Berlin')).status).toBe(200);
    const deferral = await eventually('the deferral', async () => (await h.ctx.db.select().from(activity).where(and(eq(activity.kind, 'defer'), eq(activity.email, 'lea@zeta.test'))))[0]);
    expect(deferral.detail).toBe(`deferred until ${MONDAY_0900_BERLIN.toISOString()}, Mon 09:00 Europe/Berlin for the lead (window)`);

    const r = await releaseDeferred(h.ctx, 'lea@zeta.test', { reason: 'trying the walkthrough on a Saturday', by: 'the test' });
    expect(r.released).toEqual([{ sequence: 'weekday-notes', step: 'hello', was: 'window' }]);
    await eventually('the released email', async () => h.smtp.mails.find((m) => m.envelopeTo.includes('lea@zeta.test')));
    const [line] = await h.ctx.db.select().from(activity).where(and(eq(activity.kind, 'released'), eq(activity.email, 'lea@zeta.test')));
    expect(line!.detail).toContain('trying the walkthrough on a Saturday');
    await eventually('completed', async () => (await enrollmentOf('lea@zeta.test')).state === 'completed');
    expect(h.smtp.mails.filter((m) => m.envelopeTo.includes('lea@zeta.test'))).toHaveLength(1);
    // Nothing left to release: said so, with a code.
    await expect(releaseDeferred(h.ctx, 'lea@zeta.test', { reason: 'again', by: 'the test' })).rejects.toMatchObject({ code: 'nothing_deferred' });
  });

  it("plans the step again when the CRM changes the lead's zone", async () => {
    expect((await upsert('kai@eta.test', 'Europe/Berlin')).status).toBe(200);
    await eventually('deferred to Monday in Berlin', async () => (await enrollmentOf('kai@eta.test')).nextDueAt?.getTime() === MONDAY_0900_BERLIN.getTime());
    // Kai is in Kiribati (UTC+14): Monday 09:00 there is Sunday 19:00 UTC, sooner than Berlin's.
    expect((await upsert('kai@eta.test', 'Pacific/Kiritimati')).status).toBe(200);
    expect(await enrollmentOf('kai@eta.test')).toMatchObject({ state: 'active', cursor: 'hello', nextDueAt: new Date('2026-03-08T19:00:00Z') });
    const lines = await h.ctx.db.select().from(activity).where(and(eq(activity.kind, 'defer'), eq(activity.email, 'kai@eta.test')));
    expect(lines.map((l) => l.detail).at(-1)).toContain('Mon 09:00 Pacific/Kiritimati');
    expect(h.smtp.mails.filter((m) => m.envelopeTo.includes('kai@eta.test'))).toHaveLength(0);
  });

  it('plans deferred steps again when the window in the config changes: reconcile sends what is now inside it', async () => {
    expect((await upsert('ida@theta.test', 'Europe/Berlin')).status).toBe(200);
    await eventually('deferred to Monday', async () => (await enrollmentOf('ida@theta.test')).nextDueAt?.getTime() === MONDAY_0900_BERLIN.getTime());
    // The marketer opens the window on weekends (and restarts): the config now says Saturday noon is fine.
    const seq = h.ctx.config.sequences.get('weekday-notes')!;
    const before = seq.window;
    // Only this test's reconcile plans them again: the background one (at start-up, then every minute) waits.
    const maintenance = h.worker('maintenance');
    await maintenance.pause();
    seq.window = { days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '09:00', to: '17:00' };
    try {
      // Ida's step, and Kai's from the test before, both waiting for a weekday.
      expect((await reconcile(h.ctx)).replanned).toBe(2);
      await eventually('sent on the Saturday', async () => h.smtp.mails.find((m) => m.envelopeTo.includes('ida@theta.test')));
      expect((await reconcile(h.ctx)).replanned).toBe(0);
    } finally {
      seq.window = before;
      maintenance.resume();
    }
  });
});
