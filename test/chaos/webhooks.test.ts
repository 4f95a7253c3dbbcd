// Ten concurrent deliveries of one signed webhook, and ten concurrent triggers for one lead, against a
// running API (in this process) with a worker process behind it: one lead, one enrollment, one email.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startHttp, type HttpServer } from '../../src/http/server.js';
import { signedHeaders } from '../../src/http/signing.js';
import { owed, recordResult, SECRETS, settled, startScene, tally, troubleIn, waitFor, type Scene } from './support.js';

let s: Scene;
let http: HttpServer;
beforeAll(async () => {
  s = await startScene();
  http = await startHttp(s.ctx, { host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await http?.close();
  await s?.close();
});

const upsert = (email: string) =>
  JSON.stringify({
    type: 'lead.upsert',
    lead: { email, firstName: 'Ana', persona: 'champion', account: { name: 'Hooks Co', domain: 'hooks.test', industry: 'logistics' } },
  });

async function post(body: string, headers: Record<string, string>) {
  const res = await fetch(`${http.url}/v1/triggers`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: res.status, duplicate: res.headers.get('webhook-duplicate') === 'true', json: (await res.json()) as Record<string, unknown> };
}

it('one enrollment and one email from ten concurrent redeliveries, and from ten concurrent triggers', async () => {
  const w = await s.worker('hooks');

  // The same delivery (one webhook-id) ten times at once, as an impatient sender's retries arrive.
  const same = upsert('ana@hooks.test');
  const headers = signedHeaders(SECRETS.webhookSecret, same, { id: 'msg_chaos_same_delivery' });
  const redelivered = await Promise.all(Array.from({ length: 10 }, () => post(same, headers)));
  // Exactly one did the work; the rest were told it is in progress (409) or given its answer again.
  expect(redelivered.filter((r) => r.status === 200 && !r.duplicate)).toHaveLength(1);
  expect(redelivered.every((r) => r.status === 200 || r.status === 409)).toBe(true);

  // Ten different deliveries for one new lead at once, as a CRM firing on every field change.
  const many = upsert('bo@hooks.test');
  const triggered = await Promise.all(Array.from({ length: 10 }, (_, i) => post(many, signedHeaders(SECRETS.webhookSecret, many, { id: `msg_chaos_many_${i}` }))));
  expect(triggered.map((r) => r.status)).toEqual(Array(10).fill(200));
  expect(triggered.filter((r) => (r.json.enrolled as unknown[]).length === 1)).toHaveLength(1);
  expect(triggered.filter((r) => r.json.created === true)).toHaveLength(1);

  const leads = await s.db.sql<{ id: string; email: string }[]>`select id, email from leads order by email`;
  expect(leads.map((l) => l.email)).toEqual(['ana@hooks.test', 'bo@hooks.test']);
  const enrollments = await s.db.sql<{ lead_id: string }[]>`select lead_id from enrollments where sequence_id = 'chaos-welcome'`;
  expect(enrollments).toHaveLength(2);
  expect(new Set(enrollments.map((e) => e.lead_id)).size).toBe(2);

  await waitFor('both welcome emails at rest', () => settled(s, 2), 30_000);
  const t = await tally('10 concurrent copies of one webhook / of triggers for one lead', s.db.sql, s.relay, owed(leads.map((l) => l.id), 'chaos-welcome', ['hello']));
  recordResult(60, t, '20 concurrent signed POSTs for 2 leads: 2 leads, 2 enrollments, 2 emails');
  expect(t.statuses).toEqual({ sent: 2 });
  expect(s.relay.receipts.map((r) => r.envelopeTo[0]).sort()).toEqual(['ana@hooks.test', 'bo@hooks.test']);
  expect(t).toMatchObject({ delivered: 2, duplicates: 0, lost: 0, uncertain: 0, strangers: 0 });
  expect(troubleIn(w.stderr())).toEqual([]);
});
