// Triggers from the outside world: bad input gets a clear error and changes nothing; redelivered and
// concurrent webhooks create exactly one lead and one enrollment.
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollments, leads, webhookReceipts } from '../../src/db/schema.js';
import { signedHeaders } from '../../src/http/signing.js';
import { startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configDir: 'test/fixtures/config/e2e' });
});
afterAll(async () => h?.close());

const lead = (email: string, extra: Record<string, unknown> = {}) => ({
  type: 'lead.upsert',
  lead: { email, firstName: 'Bo', persona: 'champion', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Beta Co', domain: 'beta.test' }, ...extra },
});
const count = async () => ({ leads: (await h.ctx.db.select().from(leads)).length, enrollments: (await h.ctx.db.select().from(enrollments)).length });

describe('POST /v1/triggers', () => {
  it('refuses a missing, forged or stale signature with 401 and changes nothing', async () => {
    const before = await count();
    const body = JSON.stringify(lead('forged@beta.test'));
    const unsigned = await fetch(`${h.http.url}/v1/triggers`, { method: 'POST', body });
    expect(unsigned.status).toBe(401);
    expect((await unsigned.json()).error.code).toBe('bad_signature');

    const good = signedHeaders(h.webhookSecret, body);
    const tampered = await fetch(`${h.http.url}/v1/triggers`, { method: 'POST', headers: good, body: body.replace('forged', 'forgeD') });
    expect(tampered.status).toBe(401);

    const otherSecret = signedHeaders(`whsec_${Buffer.from('another secret entirely!!').toString('base64')}`, body);
    expect((await fetch(`${h.http.url}/v1/triggers`, { method: 'POST', headers: otherSecret, body })).status).toBe(401);

    const stale = signedHeaders(h.webhookSecret, body, { at: new Date(Date.now() - 10 * 60_000) });
    const old = await fetch(`${h.http.url}/v1/triggers`, { method: 'POST', headers: stale, body });
    expect(old.status).toBe(401);
    expect((await old.json()).error.message).toMatch(/timestamp/i);

    expect(await count()).toEqual(before);
    expect(await h.ctx.db.select().from(webhookReceipts)).toHaveLength(0);
  });

  it('names each bad field: 400 for a malformed body, 422 for a bad email or persona, 404 for an unknown sequence or event', async () => {
    const before = await count();
    const malformed = await h.post('/v1/triggers', { type: 'lead.upsert', lead: { email: 'x@beta.test', persona: 7 } });
    expect(malformed.status).toBe(400);
    expect(malformed.json.error.code).toBe('invalid_body');
    expect(malformed.json.error.fields.map((f: { field: string }) => f.field)).toEqual(expect.arrayContaining(['lead.persona', 'lead.account']));

    const notJson = await h.post('/v1/triggers', null, { raw: '{"type": "lead.upsert",' });
    expect(notJson.status).toBe(400);
    expect(notJson.json.error.code).toBe('invalid_json');

    const injected = await h.post('/v1/triggers', lead('crlf@beta.test', { firstName: 'Bo\r\nBcc: victim@evil.test' }));
    expect(injected.status).toBe(400);
    expect(injected.json.error.field).toBe('lead.firstName');

    const badEmail = await h.post('/v1/triggers', lead('not-an-email'));
    expect(badEmail.status).toBe(422);
    expect(badEmail.json.error).toMatchObject({ code: 'invalid_email', field: 'lead.email' });

    const persona = await h.post('/v1/triggers', lead('p@beta.test', { persona: 'champoin' }));
    expect(persona.status).toBe(422);
    expect(persona.json.error).toMatchObject({ code: 'unknown_persona', field: 'lead.persona' });
    expect(persona.json.error.message).toContain('did you mean champion?');

    const seq = await h.post('/v1/triggers', { ...lead('s@beta.test'), sequence: 'nope' });
    expect(seq.status).toBe(404);
    expect(seq.json.error.code).toBe('unknown_sequence');

    const event = await h.post('/v1/triggers', { type: 'event', event: 'webinar_attended', email: 's@beta.test' });
    expect(event.status).toBe(404);
    expect(event.json.error.code).toBe('unknown_event');

    // Nothing half-written: no lead, no enrollment, no receipt left by any refused request.
    expect(await count()).toEqual(before);
    expect(await h.ctx.db.select().from(webhookReceipts)).toHaveLength(0);
  });

  it('answers ten concurrent deliveries of one webhook-id with one enrollment', async () => {
    const id = `msg_${randomUUID()}`;
    const results = await Promise.all(Array.from({ length: 10 }, () => h.post('/v1/triggers', lead('dup@beta.test'), { id })));
    const ok = results.filter((r) => r.status === 200);
    // Each delivery is either the first answer (200) or told to retry while the first is still running (409).
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(results.every((r) => r.status === 200 || r.status === 409)).toBe(true);
    for (const r of ok) expect(r.json.leadId).toBe(ok[0]!.json.leadId);
    const again = await h.post('/v1/triggers', lead('dup@beta.test'), { id });
    expect(again.status).toBe(200);
    expect(again.json).toEqual(ok[0]!.json);

    const rows = (await h.ctx.db.select().from(enrollments)).filter((e) => e.leadId === ok[0]!.json.leadId);
    expect(rows).toHaveLength(1);
  });

  it('lets a redelivery do the work when the first delivery died mid-request', async () => {
    const id = `msg_${randomUUID()}`;
    await h.ctx.db.insert(webhookReceipts).values({ id, response: { pending: true }, receivedAt: new Date(Date.now() - 120_000) });
    const r = await h.post('/v1/triggers', lead('orphan@beta.test'), { id });
    expect(r.status).toBe(200);
    expect(r.json.created).toBe(true);
    const [receipt] = await h.ctx.db.select().from(webhookReceipts).where(eq(webhookReceipts.id, id));
    expect(receipt!.response).toMatchObject({ status: 200 });
    // A fresh pending receipt still means "someone is on it".
    const busy = `msg_${randomUUID()}`;
    await h.ctx.db.insert(webhookReceipts).values({ id: busy, response: { pending: true } });
    expect((await h.post('/v1/triggers', lead('busy@beta.test'), { id: busy })).status).toBe(409);
  });

  it('takes a lead out of its sequences by hand (lead.exit)', async () => {
    const created = await h.post('/v1/triggers', lead('leaving@beta.test'));
    expect(created.json.enrolled).toHaveLength(1);
    const exit = await h.post('/v1/triggers', { type: 'lead.exit', email: 'Leaving@beta.test', sequence: 'awareness-notes' });
    expect(exit.status).toBe(200);
    expect(exit.json).toEqual({ exited: 1 });
    const rows = (await h.ctx.db.select().from(enrollments)).filter((e) => e.leadId === created.json.leadId);
    expect(rows).toMatchObject([{ state: 'exited', exitReason: 'manual' }]);
    expect((await h.post('/v1/triggers', { type: 'lead.exit', email: 'nobody@beta.test' })).status).toBe(404);
  });

  it('creates one lead and one enrollment from ten concurrent triggers for the same person', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, () => h.post('/v1/triggers', lead('Same.Person@beta.test'))));
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(results.filter((r) => r.json.created)).toHaveLength(1);
    expect(results.flatMap((r) => r.json.enrolled)).toHaveLength(1);
    const people = (await h.ctx.db.select().from(leads)).filter((l) => l.email === 'same.person@beta.test');
    expect(people).toHaveLength(1);
    expect((await h.ctx.db.select().from(enrollments)).filter((e) => e.leadId === people[0]!.id)).toHaveLength(1);
  });
});
