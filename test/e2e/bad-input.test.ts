// Bad input gets a 4xx that names what is wrong, cheaply, logged once and never as an unexpected error,
// and nothing is written: text Postgres cannot store, attributes nested thousands deep, broken
// percent-encoding, unbounded durations, MIME built to exhaust a parser, bodies too large for their route
// or too many at once. Mail in Latin-1 passes its signature (verified over its bytes), and persona names
// every object has (__proto__, constructor, toString) are not personas.
import { request } from 'node:http';
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loggableError } from '../../src/db/client.js';
import { accounts, activity, enrollments, leads, signals, webhookReceipts } from '../../src/db/schema.js';
import { DEFAULT_BODY_LIMITS } from '../../src/http/body.js';
import { signedHeaders } from '../../src/http/signing.js';
import { JSON_LIMITS } from '../../src/usecases/inputs.js';
import { pruneWebhookReceipts, RECEIPT_RETENTION_MS } from '../../src/usecases/pruneReceipts.js';
import { startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configDir: 'test/fixtures/config/e2e', settings: { adminToken: 'operator-token-0123456789' } });
});
afterAll(async () => h?.close());

/** Every table a refused request could have touched. */
async function written() {
  const n = async (t: typeof leads | typeof accounts | typeof enrollments | typeof signals | typeof activity | typeof webhookReceipts) => (await h.ctx.db.select({ n: sql<number>`count(*)::int` }).from(t))[0]!.n;
  return { leads: await n(leads), accounts: await n(accounts), enrollments: await n(enrollments), signals: await n(signals), activity: await n(activity), receipts: await n(webhookReceipts) };
}

/** Console lines written while `fn` runs: [http] refusals (warn) and unexpected errors (error). */
async function logged<T>(fn: () => Promise<T>): Promise<{ result: T; warns: string[]; errors: string[] }> {
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
  const error = vi.spyOn(console, 'error').mockImplementation(() => {});
  try {
    const result = await fn();
    // The log line is written before the answer is sent.
    return { result, warns: warn.mock.calls.map((c) => c.join(' ')).filter((l) => l.startsWith('[http]')), errors: error.mock.calls.map((c) => c.join(' ')) };
  } finally {
    warn.mockRestore();
    error.mockRestore();
  }
}
afterEach(() => vi.restoreAllMocks());

const lead = (email: string, extra: Record<string, unknown> = {}, account: Record<string, unknown> = {}) => ({
  type: 'lead.upsert',
  lead: { email, firstName: 'Bo', persona: 'champion', account: { name: 'Beta Co', domain: 'beta.test', ...account }, ...extra },
});

/** Signed raw mail to /v1/inbound, sent as the bytes given. */
async function postMail(raw: Buffer | string): Promise<{ status: number; json: any }> {
  const bytes = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
  const res = await fetch(`${h.http.url}/v1/inbound`, { method: 'POST', headers: { 'content-type': 'message/rfc822', ...signedHeaders(h.webhookSecret, bytes) }, body: new Uint8Array(bytes) });
  return { status: res.status, json: await res.json() };
}

/**
 * A POST written 64 KiB at a time from one small buffer (the test process is also the server: a 24 MB
 * buffer per request would measure the client, not the API). Resolves with the answer, and with how much
 * of the body had been written when the answer's status line arrived.
 */
function streamPost(path: string, bytes: number, headers: Record<string, string | number>, opts: { chunked?: boolean } = {}): Promise<{ status: number; json: any; writtenAtAnswer: number; error?: string }> {
  const chunk = Buffer.alloc(64 * 1024, 'a');
  const u = new URL(path, h.http.url);
  return new Promise((resolve) => {
    let written = 0;
    let writtenAtAnswer = -1;
    let stopped = false;
    const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'POST', headers: { ...(opts.chunked ? {} : { 'content-length': bytes }), ...headers } }, (res) => {
      writtenAtAnswer = written;
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        stopped = true;
        const text = Buffer.concat(parts).toString('utf8');
        resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : null, writtenAtAnswer });
      });
    });
    req.on('error', (err) => resolve({ status: -1, json: null, writtenAtAnswer, error: err.message }));
    const pump = () => {
      while (written < bytes && !stopped) {
        const n = Math.min(chunk.length, bytes - written);
        written += n;
        if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

/** Well-formed Standard Webhooks headers with a fresh timestamp and a signature that will not match. */
const forgedHeaders = () => ({ ...signedHeaders(h.webhookSecret, 'some other body'), 'content-type': 'message/rfc822' });

describe('bodies: capped per route while streaming, bounded together', () => {
  it('answers a 10 MB trigger with 413 (declared or chunked), not a reset, and the connection still reads the answer', async () => {
    const headers = { ...signedHeaders(h.webhookSecret, 'x'), 'content-type': 'application/json' };
    const declared = await streamPost('/v1/triggers', 10 * 1024 * 1024, headers);
    expect(declared.error).toBeUndefined();
    expect(declared.status).toBe(413);
    expect(declared.json.error.code).toBe('too_large');
    expect(declared.json.error.message).toContain('1 MiB');
    // Refused on its Content-Length: answered before most of it was sent.
    expect(declared.writtenAtAnswer).toBeLessThan(10 * 1024 * 1024);

    const chunked = await streamPost('/v1/triggers', 10 * 1024 * 1024, headers, { chunked: true });
    expect(chunked.error).toBeUndefined();
    expect(chunked.status).toBe(413);
    expect(chunked.json.error.code).toBe('too_large');
  });

  it('refuses an unconfigured provider route and an unsigned inbound post before reading their bodies', async () => {
    const size = 29 * 1024 * 1024;
    const provider = await streamPost('/v1/providers/sendgrid/inbound', size, { 'content-type': 'multipart/form-data; boundary=x' });
    expect(provider.status).toBe(503);
    expect(provider.json.error.code).toBe('provider_not_configured');
    expect(provider.writtenAtAnswer).toBeLessThan(size);
    const unsigned = await streamPost('/v1/inbound', 24 * 1024 * 1024, { 'content-type': 'message/rfc822' });
    expect(unsigned.status).toBe(401);
    expect(unsigned.writtenAtAnswer).toBeLessThan(24 * 1024 * 1024);
  });

  it('holds the memory of 40 concurrent 24 MB posts to /v1/inbound within the in-flight budget', async () => {
    const limits = DEFAULT_BODY_LIMITS;
    const size = 24 * 1024 * 1024;
    (globalThis as { gc?: () => void }).gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    // Half unsigned (refused on their headers), half with a well-formed signature that does not match:
    // those must be read whole before they can be refused, and that is what the budget bounds.
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => streamPost('/v1/inbound', size, i % 2 ? forgedHeaders() : { 'content-type': 'message/rfc822' })));
    clearInterval(sample);
    const statuses = results.reduce<Record<string, number>>((a, r) => ({ ...a, [r.status]: (a[r.status] ?? 0) + 1 }), {});
    const grewMb = (peak - before) / 2 ** 20;
    console.log(`[rss] 40 × 24 MB posts to /v1/inbound: RSS ${(before / 2 ** 20).toFixed(0)} MB → peak ${(peak / 2 ** 20).toFixed(0)} MB (+${grewMb.toFixed(0)} MB); in-flight budget ${limits.inFlight / 2 ** 20} MB; answers ${JSON.stringify(statuses)}`);
    // Every one answered (no resets): 401 for a bad or missing signature, 503 + Retry-After when the budget was full.
    expect(results.every((r) => r.status === 401 || r.status === 503)).toBe(true);
    expect(results.filter((r) => r.status === 503).every((r) => r.json.error.code === 'busy')).toBe(true);
    // Bodies held at once never exceed the budget. Bodies already answered but not yet collected add up to
    // about as much again (V8 collects outside-the-heap memory after roughly that much new allocation), and
    // so do the chunks of refused bodies read and dropped. Before the budget, this grew by 400+ MB.
    expect(peak - before).toBeLessThan(3 * limits.inFlight);
  });
});

describe('text Postgres cannot store', () => {
  it('refuses a NUL byte or a lone surrogate in a name, an attribute or an email with a 400 naming the field, and writes nothing', async () => {
    const before = await written();
    const cases: [unknown, string][] = [
      [lead('nul@beta.test', { firstName: 'Bo\u0000b' }), 'lead.firstName'],
      [lead('surrogate@beta.test', {}, { name: 'Beta \ud800 Co' }), 'lead.account.name'],
      [lead('attr@beta.test', { attributes: { plan: 'pro\u0000' } }), 'lead.attributes.plan'],
      [lead('attrkey@beta.test', { attributes: { 'p\u0000lan': 'pro' } }), 'lead.attributes'],
      [lead('deep@beta.test', { attributes: { a: { b: '\udc00' } } }), 'lead.attributes.a.b'],
      [lead('nul\u0000@beta.test'), 'lead.email'],
      [lead('lone\ud83d@beta.test'), 'lead.email'],
      [{ type: 'event', event: 'webinar', email: 'x@beta.test', data: { note: '\u0000' } }, 'data.note'],
    ];
    for (const [body, field] of cases) {
      const { result, warns, errors } = await logged(() => h.post('/v1/triggers', body));
      expect(result.status, field).toBe(400);
      expect(result.json.error).toMatchObject({ code: 'invalid_body', field });
      expect(result.json.error.message).toMatch(/NUL|unpaired surrogate/);
      expect(warns, field).toHaveLength(1);
      expect(errors, field).toEqual([]);
    }
    expect(await written()).toEqual(before);
  });

  it('answers lead.exit with an invalid email with 422, not a lookup', async () => {
    const r = await h.post('/v1/triggers', { type: 'lead.exit', email: 'not an email' });
    expect(r.status).toBe(422);
    expect(r.json.error).toMatchObject({ code: 'invalid_email', field: 'email' });
  });
});

describe('attributes nested thousands deep', () => {
  it(`refuses attributes nested deeper than ${JSON_LIMITS.depth} levels, naming where, and writes nothing`, async () => {
    const before = await written();
    const depth = 5000;
    const nested = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    const raw = JSON.stringify(lead('nested@beta.test')).replace('"firstName":"Bo"', `"firstName":"Bo","attributes":${nested}`);
    const { result, warns, errors } = await logged(() => h.post('/v1/triggers', null, { raw }));
    expect(result.status).toBe(400);
    expect(result.json.error.code).toBe('invalid_body');
    expect(result.json.error.field).toBe(`lead.attributes${'.a'.repeat(JSON_LIMITS.depth)}`);
    expect(result.json.error.message).toContain(`nested more than ${JSON_LIMITS.depth} levels deep`);
    expect(warns).toHaveLength(1);
    expect(errors).toEqual([]);

    const eventData = await h.post('/v1/triggers', null, { raw: `{"type":"event","event":"webinar","email":"x@beta.test","data":${nested}}` });
    expect(eventData.status).toBe(400);
    expect(eventData.json.error.field).toMatch(/^data(\.a)+$/);

    const large = await h.post('/v1/triggers', lead('large@beta.test', { attributes: { blob: 'x'.repeat(JSON_LIMITS.bytes + 1) } }));
    expect(large.status).toBe(400);
    expect(large.json.error).toMatchObject({ field: 'lead.attributes' });
    expect(large.json.error.message).toMatch(/KiB as JSON/);

    const proto = await h.post('/v1/triggers', null, { raw: JSON.stringify(lead('proto@beta.test')).replace('"firstName":"Bo"', '"firstName":"Bo","attributes":{"__proto__":{"x":1}}') });
    expect(proto.status).toBe(400);
    expect(proto.json.error.message).toContain('"__proto__" is a reserved name');
    expect(await written()).toEqual(before);
  });
});

describe('URLs and queries', () => {
  it('answers a click link with broken percent-encoding with 400, without a signature, and records nothing', async () => {
    const before = await written();
    const { result, warns, errors } = await logged(() => fetch(`${h.http.url}/t/c/x/%E0%A4%A`, { redirect: 'manual' }));
    expect(result.status).toBe(400);
    expect((await result.json()).error).toMatchObject({ code: 'invalid_path', field: 'link' });
    expect(warns).toHaveLength(1);
    expect(errors).toEqual([]);
    expect(await written()).toEqual(before);
  });

  it('answers /v1/stats?since= with a duration beyond any date with 422 naming since', async () => {
    for (const since of ['99999999999d', '9'.repeat(400) + 'd']) {
      const { result, warns, errors } = await logged(() => fetch(`${h.http.url}/v1/stats?since=${since}`));
      expect(result.status).toBe(422);
      const body = await result.json();
      expect(body.error).toMatchObject({ code: 'invalid_field', field: 'since' });
      expect(body.error.message).toMatch(/more than 100 years/);
      expect(warns).toHaveLength(1);
      expect(errors).toEqual([]);
    }
    expect((await fetch(`${h.http.url}/v1/stats?since=30d`)).status).toBe(200);
    expect((await fetch(`${h.http.url}/v1/stats?sequence=a%00b`)).status).toBe(422);
  });

  it('compares the admin token in constant time, and still tells a right one from a wrong one', async () => {
    // Relayed, so loopback alone does not make the caller the operator.
    const relayed = { 'x-forwarded-for': '203.0.113.9' };
    expect((await fetch(`${h.http.url}/v1/stats`, { headers: relayed })).status).toBe(403);
    expect((await fetch(`${h.http.url}/v1/stats`, { headers: { ...relayed, authorization: 'Bearer operator-token-0123456780' } })).status).toBe(403);
    expect((await fetch(`${h.http.url}/v1/stats`, { headers: { ...relayed, authorization: 'Bearer x' } })).status).toBe(403);
    expect((await fetch(`${h.http.url}/v1/stats`, { headers: { ...relayed, authorization: 'Bearer operator-token-0123456789' } })).status).toBe(200);
  });
});

describe('triggers: what the route takes', () => {
  it('takes application/json only: anything else, signed, is a 415', async () => {
    const body = JSON.stringify(lead('typed@beta.test'));
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1']) {
      const r = await fetch(`${h.http.url}/v1/triggers`, { method: 'POST', headers: { ...signedHeaders(h.webhookSecret, body), 'content-type': type }, body });
      expect(r.status, type).toBe(415);
      expect((await r.json()).error.code).toBe('unsupported_media_type');
    }
    // Past the media type: a lead nobody upserted is a 404 (and leaves nothing behind to work on).
    const exit = JSON.stringify({ type: 'lead.exit', email: 'typed@beta.test' });
    const ok = await fetch(`${h.http.url}/v1/triggers`, { method: 'POST', headers: { ...signedHeaders(h.webhookSecret, exit), 'content-type': 'application/json; charset=utf-8' }, body: exit });
    expect(ok.status).toBe(404);
    expect((await ok.json()).error.code).toBe('unknown_lead');
  });

  it('refuses a body that is not UTF-8 with 400, whatever its signature', async () => {
    const bytes = Buffer.concat([Buffer.from('{"type":"lead.exit","email":"'), Buffer.from([0xe9]), Buffer.from('@beta.test"}')]);
    const r = await fetch(`${h.http.url}/v1/triggers`, { method: 'POST', headers: { ...signedHeaders(h.webhookSecret, bytes), 'content-type': 'application/json' }, body: new Uint8Array(bytes) });
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatchObject({ code: 'invalid_json', message: 'the body is not valid UTF-8' });
  });

  it('refuses to fan out a one-to-one sequence, naming its mode', async () => {
    const before = await written();
    const r = await h.post('/v1/sequences/awareness-notes/fanout', {});
    expect(r.status).toBe(422);
    expect(r.json.error).toMatchObject({ code: 'not_segmented', field: 'sequence' });
    expect(r.json.error.message).toContain('one_to_one');
    expect(await written()).toEqual(before);
  });
});

describe('persona names every object has', () => {
  it('refuses __proto__, constructor and toString as personas with 422, and stores nothing', async () => {
    const before = await written();
    for (const persona of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      const r = await h.post('/v1/triggers', lead(`${persona.replace(/_/g, '')}@beta.test`, { persona }));
      expect(r.status, persona).toBe(422);
      expect(r.json.error).toMatchObject({ code: 'unknown_persona', field: 'lead.persona' });
      expect(r.json.error.message).toContain('personas are champion, economic_buyer');
    }
    expect(await written()).toEqual(before);
  });
});

describe('inbound mail', () => {
  const head = 'From: Someone <someone@elsewhere.test>\r\nTo: hello@handrail.example\r\nSubject: Re: hello\r\nMessage-ID: <bad-input@elsewhere.test>\r\nMIME-Version: 1.0\r\n';
  const nested = (depth: number) => {
    let s = head;
    for (let i = 0; i < depth; i++) s += `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n`;
    s += 'Content-Type: text/plain\r\n\r\nhello\r\n';
    for (let i = depth - 1; i >= 0; i--) s += `--b${i}--\r\n`;
    return s;
  };
  const manyParts = (n: number) => `${head}Content-Type: multipart/mixed; boundary="b"\r\n\r\n${'--b\r\n\r\nx\r\n'.repeat(n)}--b--\r\n`;
  const longHeader = (bytes: number) => `${head}X-Long: ${'a'.repeat(bytes)}\r\nContent-Type: text/plain\r\n\r\nhello\r\n`;

  it('answers MIME nested thousands deep, 200,000 parts or a 20 MB header line with a quick 422 naming the limit, and writes nothing', async () => {
    const before = await written();
    const cases: [string, string, string][] = [
      ['nested 3,000 deep', nested(3000), 'mime_too_complex'],
      ['200,000 parts', manyParts(200_000), 'mime_too_complex'],
      ['a 20 MB header line', longHeader(20 * 1024 * 1024), 'mime_header_too_large'],
    ];
    for (const [what, raw, code] of cases) {
      const started = Date.now();
      const { result, warns, errors } = await logged(() => postMail(raw));
      expect(result.status, what).toBe(422);
      expect(result.json.error.code, what).toBe(code);
      expect(warns, what).toHaveLength(1);
      expect(errors, what).toEqual([]);
      // Cheap: the parser stops at its limits, so even the 20 MB message is answered in well under the time a provider waits.
      expect(Date.now() - started, what).toBeLessThan(5_000);
    }
    expect(await written()).toEqual(before);
  });

  it('verifies a Latin-1 message signed over its own bytes, and refuses one signed over a UTF-8 reading of them', async () => {
    const latin1 = Buffer.from(
      'From: =?ISO-8859-1?Q?Jos=E9?= <jose@elsewhere.test>\r\nTo: hello@handrail.example\r\nSubject: =?ISO-8859-1?Q?R=E9ponse?=\r\nMessage-ID: <latin1@elsewhere.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nMerci, ça m\'intéresse. À bientôt, José\r\n',
      'latin1',
    );
    expect(latin1.toString('utf8')).toContain('\ufffd'); // not UTF-8: decoding it changes the bytes
    const ok = await postMail(latin1);
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ matched: false });

    const decoded = latin1.toString('utf8');
    const wrong = await fetch(`${h.http.url}/v1/inbound`, { method: 'POST', headers: { 'content-type': 'message/rfc822', ...signedHeaders(h.webhookSecret, decoded) }, body: new Uint8Array(latin1) });
    expect(wrong.status).toBe(401);
  });
});

describe('housekeeping', () => {
  it('keeps query parameters (people\'s data) out of database errors and their log lines', async () => {
    let caught: unknown;
    try {
      await h.ctx.db.insert(leads).values({ email: 'secret.person@private.test', accountId: 'not-a-uuid', persona: 'champion', stage: 'awareness', stageEnteredAt: new Date() });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(Error);
    expect((caught as Error).message).not.toContain('secret.person');
    const line = String(loggableError(caught));
    expect(line).toMatch(/^database error 22P02/);
    expect(line).not.toContain('secret.person');
    expect(line).not.toContain('not-a-uuid');
    const { inspect } = await import('node:util');
    expect(inspect(caught)).not.toContain('secret.person');
  });

  it('prunes webhook receipts past the replay window and keeps the rest', async () => {
    const old = new Date(Date.now() - RECEIPT_RETENTION_MS - 60_000);
    await h.ctx.db.insert(webhookReceipts).values([
      { id: 'msg_prune_old', response: { status: 200 }, receivedAt: old },
      { id: 'msg_prune_fresh', response: { status: 200 } },
    ]);
    expect(await pruneWebhookReceipts(h.ctx)).toBe(1);
    const ids = (await h.ctx.db.select({ id: webhookReceipts.id }).from(webhookReceipts)).map((r) => r.id);
    expect(ids).toContain('msg_prune_fresh');
    expect(ids).not.toContain('msg_prune_old');
    await h.ctx.db.delete(webhookReceipts);
  });
});
