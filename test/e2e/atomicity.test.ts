// Nothing half-written: when applying a signal fails (the database refuses mid-way), the signal is not
// kept either, so the person's second click (or the provider's retry) applies it in full.
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollments, leads, messages, signals, suppressions } from '../../src/db/schema.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configDir: 'test/fixtures/config/e2e' });
});
afterAll(async () => h?.close());

describe('signals and their effects commit together', () => {
  it('keeps no unsubscribe signal when suppressing fails, and applies it in full on the retry', async () => {
    await h.post('/v1/triggers', { type: 'lead.upsert', lead: { email: 'flaky@omega.test', firstName: 'Flo', persona: 'champion', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Omega', domain: 'omega.test' } } });
    const mail = await eventually('mail', async () => h.smtp.mails[0]);
    const url = /<([^>]+\/u\/[^>]+)>/.exec(mail.raw.replace(/\r?\n /g, ' '))![1]!;

    // The database refuses the suppression, as it would during a failover.
    await h.ctx.db.execute(sql`create function refuse_once() returns trigger language plpgsql as $$ begin raise exception 'simulated failure'; end $$`);
    await h.ctx.db.execute(sql`create trigger refuse_suppression before insert on suppressions for each row execute function refuse_once()`);
    const failed = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' });
    expect(failed.status).toBe(500);
    expect(await h.ctx.db.select().from(signals).where(eq(signals.kind, 'unsubscribe'))).toHaveLength(0);
    expect((await h.ctx.db.select().from(leads).where(eq(leads.email, 'flaky@omega.test')))[0]!.status).toBe('active');

    await h.ctx.db.execute(sql`drop trigger refuse_suppression on suppressions`);
    const retried = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' });
    expect(retried.status).toBe(200);
    const [lead] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'flaky@omega.test'));
    expect(lead!.status).toBe('unsubscribed');
    expect(await h.ctx.db.select().from(suppressions)).toHaveLength(1);
    expect((await h.ctx.db.select().from(enrollments)).every((e) => e.state === 'exited')).toBe(true);
  });

  it('never sends a step that was queued before the lead left the sequence', async () => {
    const sender = h.worker('send');
    await sender.pause();
    try {
      await h.post('/v1/triggers', { type: 'lead.upsert', lead: { email: 'gone@omega.test', firstName: 'Gil', persona: 'champion', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Omega', domain: 'omega.test' } } });
      const queued = await eventually('queued intro', async () => (await h.ctx.db.select().from(messages).where(eq(messages.toAddress, 'gone@omega.test')))[0]);
      expect(queued.status).toBe('queued');
      expect((await h.post('/v1/triggers', { type: 'lead.exit', email: 'gone@omega.test' })).json).toEqual({ exited: 1 });
      const [after] = await h.ctx.db.select().from(messages).where(eq(messages.id, queued.id));
      expect(after).toMatchObject({ status: 'cancelled' });
    } finally {
      sender.resume();
    }
    await new Promise((r) => setTimeout(r, 500));
    expect(h.smtp.mails.filter((m) => m.envelopeTo.includes('gone@omega.test'))).toHaveLength(0);
  });
});
