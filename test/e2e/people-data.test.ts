// People data end to end: a CSV import (good and bad rows, a re-import, a suppressed address), a person's
// export, their erasure (nothing of them left in any table, never mailed again) and the preference page.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { accounts, activity, auditLog, enrollments, leads, outboundEvents, signals, suppressions } from '../../src/db/schema.js';
import { importLeads } from '../../src/usecases/importLeads.js';
import { loadMapping } from '../../src/usecases/leadColumns.js';
import { signToken } from '../../src/mail/tracking.js';
import { enqueueSends, enqueueSteps, stepJobId } from '../../src/queue/index.js';
import { messages } from '../../src/db/schema.js';
import { eventually, runDueStepOf, startHarness, type Harness } from '../support/harness.js';

const CHROME = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
let h: Harness;
const crmBodies: string[] = [];
const crm = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    crmBodies.push(body);
    res.writeHead(204).end();
  });
});

beforeAll(async () => {
  await new Promise<void>((r) => crm.listen(0, '127.0.0.1', () => r()));
  h = await startHarness({ configDir: 'test/fixtures/config/e2e' });
  h.ctx.config.funnel.webhooks = [{ url: `http://127.0.0.1:${(crm.address() as AddressInfo).port}/crm`, events: ['lead.erased'] }];
});
afterAll(async () => {
  await h?.close();
  crm.close();
});

const mailsTo = (email: string) => h.smtp.mails.filter((m) => m.envelopeTo.includes(email));

const CSV = [
  'email,firstName,persona,timeZone,account.name,account.domain,owner.name,owner.email,attributes.source',
  'ana@import.test,Ana,champion,Europe/Berlin,Import Co,import.test,Sam Rivera,sam@handrail.example,crm',
  'bo@import.test,Bo,champion,,Import Co,import.test,Sam Rivera,sam@handrail.example,crm',
  'not-an-email,Nobody,champion,,Import Co,import.test,,,crm',
  'cy@import.test,Cy,wizard,,Import Co,import.test,,,crm',
  'di@import.test,Di,champion,Mars/Olympus,Import Co,import.test,,,crm',
  'ed@import.test,Ed,champion',
  'sup@import.test,Sup,champion,,Import Co,import.test,Sam Rivera,sam@handrail.example,crm',
  '',
].join('\n');

describe('import', () => {
  it('imports good rows, reports each bad line, and never mails a suppressed address', async () => {
    await h.ctx.db.insert(suppressions).values({ email: 'sup@import.test', reason: 'unsubscribe', source: 'earlier_tool' });
    const r = await h.post('/v1/imports', null, { raw: CSV, headers: { 'content-type': 'text/csv' } });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ rows: 7, created: 3, updated: 0, suppressed: 1, rejected: 4 });
    expect(r.json.rejects.map((x: { line: number; code: string }) => [x.line, x.code])).toEqual([
      [4, 'invalid_email'],
      [5, 'unknown_persona'],
      [6, 'invalid_field'],
      [7, 'invalid_row'],
    ]);
    expect(r.json.rejects[2].reason).toMatch(/Mars\/Olympus/);
    await eventually('intro mails to ana and bo', async () => mailsTo('ana@import.test').length >= 1 && mailsTo('bo@import.test').length >= 1);
    const [sup] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'sup@import.test'));
    expect(sup!.status).toBe('unsubscribed');
    expect(await h.ctx.db.select().from(enrollments).where(eq(enrollments.leadId, sup!.id))).toEqual([]);
    expect(mailsTo('sup@import.test')).toEqual([]);
  });

  it('changes nothing when the same file is imported again', async () => {
    const snapshot = async () => ({
      leads: await h.ctx.db.select({ email: leads.email, updatedAt: leads.updatedAt }).from(leads).orderBy(leads.email),
      enrollments: (await h.ctx.db.select().from(enrollments)).length,
      activity: (await h.ctx.db.select({ n: sql<number>`count(*)::int` }).from(activity).where(sql`${activity.kind} like 'lead_%'`))[0]!.n,
    });
    const before = await snapshot();
    const r = await importLeads(h.ctx, Readable.from([CSV]), { actor: 'test' });
    expect(r).toMatchObject({ rows: 7, created: 0, updated: 0, unchanged: 3, enrolled: 0, rejected: 4 });
    expect(await snapshot()).toEqual(before);
    const audits = await h.ctx.db.select().from(auditLog).where(eq(auditLog.action, 'import'));
    expect(audits).toHaveLength(2);
  });

  it('maps a HubSpot export with the example mapping, and a dry run writes nothing', async () => {
    const hubspot = 'Record ID,First Name,Last Name,Email,Job Title,Lifecycle Stage,Buying Role,Company Name,Company Domain Name,Contact owner\n1,Gus,Ng,gus@hub.test,VP Finance,marketingqualifiedlead,DECISION_MAKER,Hub Co,hub.test,Sam Rivera\n';
    const mapping = loadMapping('examples/import/hubspot.mapping.yaml');
    const dry = await importLeads(h.ctx, Readable.from([hubspot]), { actor: 'test', mapping, dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, rows: 1, created: 1, rejected: 0 });
    expect(await h.ctx.db.select().from(leads).where(eq(leads.email, 'gus@hub.test'))).toEqual([]);
    const r = await importLeads(h.ctx, Readable.from([hubspot]), { actor: 'test', mapping, enroll: false });
    expect(r).toMatchObject({ created: 1, enrolled: 0, rejected: 0 });
    const [gus] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'gus@hub.test'));
    expect(gus).toMatchObject({ firstName: 'Gus', title: 'VP Finance', stage: 'interest', persona: 'economic_buyer' });
    expect(await h.ctx.db.select().from(enrollments).where(eq(enrollments.leadId, gus!.id))).toEqual([]);
  });

  it('nurture import: a dry run leaves no file behind, and a real run writes the rejected rows only when there are some', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nurture-import-'));
    try {
      const env = { ...process.env, DATABASE_URL: h.databaseUrl, REDIS_URL: inject('redisUrl'), QUEUE_PREFIX: `cli${Date.now()}`, NURTURE_CONFIG_DIR: 'test/fixtures/config/e2e', NURTURE_DATA_DIR: dir };
      const nurture = (...args: string[]) =>
        new Promise<{ code: number; out: string }>((resolve) =>
          execFile(process.execPath, ['bin/nurture.js', ...args], { env }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, out: stdout + stderr })),
        );
      const header = 'email,firstName,persona,account.name,account.domain';
      const bad = join(dir, 'bad.csv');
      await writeFile(bad, `${header}\nel@cli.test,El,champion,Cli Co,cli.test\nnot-an-email,No,champion,Cli Co,cli.test\n`);
      const dry = await nurture('import', bad, '--dry-run', '--no-enroll');
      expect(dry.out).toContain('dry run: 2 rows');
      expect(dry.out).toContain('rejected 1 (--report FILE lists them all with their line numbers)');
      expect(dry.code).toBe(2);
      expect(await readdir(dir)).not.toContain('bad.csv.rejected.csv');
      expect(await h.ctx.db.select().from(leads).where(eq(leads.email, 'el@cli.test'))).toEqual([]);

      const real = await nurture('import', bad, '--no-enroll');
      expect(real.out).toContain(`rejected 1: see ${bad}.rejected.csv`);
      expect(await readFile(`${bad}.rejected.csv`, 'utf8')).toMatch(/^line,email,code,reason\n3,not-an-email,invalid_email,.*not-an-email.*\n$/);
      const good = join(dir, 'good.csv');
      await writeFile(good, `${header}\nfy@cli.test,Fy,champion,Cli Co,cli.test\n`);
      expect((await nurture('import', good, '--no-enroll')).code).toBe(0);
      expect(await readdir(dir)).not.toContain('good.csv.rejected.csv');
      expect((await h.ctx.db.select().from(leads).where(inArray(leads.email, ['el@cli.test', 'fy@cli.test']))).map((l) => l.email).sort()).toEqual(['el@cli.test', 'fy@cli.test']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('export and erase', () => {
  it("exports the person's messages and signals as one JSON document", async () => {
    const mail = mailsTo('ana@import.test')[0]!;
    const pixel = /src="([^"]+\/t\/o\/[^"]+\.gif)"/.exec(String(mail.parsed.html))![1]!;
    await fetch(pixel, { headers: { 'user-agent': CHROME } });
    const [ana] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'ana@import.test'));
    await eventually('open recorded', async () => (await h.ctx.db.select().from(signals).where(eq(signals.leadId, ana!.id))).length > 0);
    const res = await fetch(`${h.http.url}/v1/leads/${encodeURIComponent('ana@import.test')}/export`);
    expect(res.status).toBe(200);
    const doc = await res.json();
    expect(doc.lead.email).toBe('ana@import.test');
    expect(doc.account.name).toBe('Import Co');
    expect(doc.messages.length).toBeGreaterThanOrEqual(1);
    expect(doc.messages[0]).toMatchObject({ toAddress: 'ana@import.test', sequenceId: 'awareness-notes', stepId: 'intro' });
    // What it said, rendered again for her (bodies are not kept), and from which template version.
    expect(doc.messages[0].content.subject).toBe(mail.parsed.subject);
    expect(doc.messages[0].content.text).toContain('Ana');
    expect(doc.messages[0].content.renderedFrom).toMatch(/^template intro-note version \S+ \(sent: \S+\)$/);
    expect(doc.signals.map((s: { kind: string }) => s.kind)).toContain('open');
    expect(doc.signals[0].evidence).toBeTruthy();
    expect(doc.enrollments.length).toBeGreaterThanOrEqual(1);
  });

  it('erases the person from every table, tells the CRM, and never mails them again', async () => {
    await eventually('ana follow-up sent', async () => mailsTo('ana@import.test').length >= 2);
    const [ana] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'ana@import.test'));
    // Ana's notes wait an hour before the last one. A wait that long gets its step job from reconcile as it
    // comes near (beyond the step-job horizon it waits in Postgres alone): added here as reconcile would.
    // Erasing her removes it from Redis too.
    const waiting = await eventually('the hour-long wait', async () => (await h.ctx.db.select().from(enrollments).where(and(eq(enrollments.leadId, ana!.id), eq(enrollments.state, 'active'), sql`${enrollments.progress}->>'waiting' = 'pause-again'`)))[0]);
    const jobId = stepJobId({ enrollmentId: waiting.id, revision: waiting.revision });
    await enqueueSteps(h.ctx.queues, [{ job: { enrollmentId: waiting.id, revision: waiting.revision }, at: waiting.nextDueAt }], new Date());
    await eventually('step job queued', async () => !!(await h.ctx.queues.step.getJob(jobId)));
    const res = await fetch(`${h.http.url}/v1/leads/ana%40import.test`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect((await res.json()).removed).toMatchObject({ leads: 1 });
    expect(await h.ctx.queues.step.getJob(jobId)).toBeUndefined();
    // The CRM hears whom to erase, then the outbox row forgets it.
    await eventually('CRM told', async () => crmBodies.find((b) => b.includes('lead.erased') && b.includes('ana@import.test')));
    await eventually('outbox scrubbed', async () => (await h.ctx.db.select().from(outboundEvents).where(and(eq(outboundEvents.type, 'lead.erased'), sql`delivered_at is not null`))).length === 1);

    // Every table in every schema: no row mentions the address or the lead's id.
    const tables = await h.ctx.database.sql<{ schema: string; name: string }[]>`
      select table_schema as schema, table_name as name from information_schema.tables
      where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')`;
    expect(tables.length).toBeGreaterThan(10);
    for (const t of tables) {
      const [row] = await h.ctx.database.sql.unsafe(`select count(*)::int as n from "${t.schema}"."${t.name}" x where x::text ilike $1 or x::text like $2`, ['%ana@import.test%', `%${ana!.id}%`]);
      expect({ table: `${t.schema}.${t.name}`, n: row!.n }).toEqual({ table: `${t.schema}.${t.name}`, n: 0 });
    }
    const [audit] = await h.ctx.db.select().from(auditLog).where(eq(auditLog.action, 'lead.erased'));
    expect(audit!.detail).toMatchObject({ removed: { leads: 1 } });
    expect((await h.ctx.db.select().from(suppressions).where(eq(suppressions.reason, 'erased'))).length).toBe(1);

    // The CRM sends them again: refused, nothing stored, nothing sent.
    const mailed = mailsTo('ana@import.test').length;
    const again = await h.post('/v1/triggers', { type: 'lead.upsert', lead: { email: 'Ana@Import.test', persona: 'champion', account: { name: 'Import Co' } } });
    expect(again.status).toBe(409);
    expect(again.json.error.code ?? again.json.code).toBe('erased');
    const reimport = await importLeads(h.ctx, Readable.from([CSV]), { actor: 'test' });
    expect(reimport.rejects.find((x) => x.line === 2)).toMatchObject({ code: 'erased' });
    expect(await h.ctx.db.select().from(leads).where(eq(leads.email, 'ana@import.test'))).toEqual([]);
    // bo's next mail is the proof that the workers ran meanwhile.
    await eventually('bo follow-up', async () => mailsTo('bo@import.test').length >= 2);
    expect(mailsTo('ana@import.test').length).toBe(mailed);
  });
});

describe('preference centre', () => {
  it("keeps the rep's one-to-one mail and stops the newsletter; the page's GET changes nothing", async () => {
    const lead = { email: 'dee@pref.test', firstName: 'Dee', persona: 'economic_buyer', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Pref Co', domain: 'pref.test', tier: 'enterprise' } };
    expect((await h.post('/v1/triggers', { type: 'lead.upsert', lead, sequence: 'awareness-newsletter' })).json.enrolled).toHaveLength(1);
    const newsletter = await eventually('newsletter', async () => mailsTo('dee@pref.test')[0]);
    const link = /href="([^"]+\/p\/[\w.-]+)"/.exec(String(newsletter.parsed.html))![1]!;

    const page = await fetch(link);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Email preferences');
    const [before] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'dee@pref.test'));
    expect(before!.mailPreference).toBe('all');
    expect(await h.ctx.db.select().from(signals).where(eq(signals.kind, 'preference'))).toEqual([]);

    const chosen = await fetch(link, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': CHROME }, body: 'choice=rep_only' });
    expect(chosen.status).toBe(200);
    expect(await chosen.text()).toContain('only from your contact');
    const [after] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'dee@pref.test'));
    expect(after!.mailPreference).toBe('rep_only');
    const [signal] = await h.ctx.db.select().from(signals).where(eq(signals.kind, 'preference'));
    expect(signal).toMatchObject({ leadId: after!.id, human: true, reason: 'rep_only' });
    expect(signal!.evidence).toMatchObject({ via: 'preference_page', choice: 'rep_only', userAgent: CHROME });

    // The newsletter is refused; the rep's one-to-one sequence (entered on reaching interest) still sends.
    const refused = await h.post('/v1/triggers', { type: 'lead.upsert', lead, sequence: 'awareness-newsletter' });
    expect(refused.json.refused).toContainEqual({ sequence: 'awareness-newsletter', reason: expect.stringMatching(/only from their rep/) });
    const moved = await h.post('/v1/triggers', { type: 'lead.upsert', lead: { ...lead, stage: 'interest' } });
    expect(moved.status).toBe(200);
    // The engine decided to send it (the row), and it went out through SMTP (the mail).
    await eventually('playbook queued', async () => (await h.ctx.database.sql`select 1 from messages m join leads l on l.id = m.lead_id where l.email = 'dee@pref.test' and m.step_id = 'playbook'`).length);
    const oneToOne = await eventually('the rep\'s playbook mail', async () => mailsTo('dee@pref.test').find((m) => m !== newsletter));
    expect(String(oneToOne.parsed.from?.text)).toContain('Sam Rivera');
    expect(mailsTo('dee@pref.test')).toHaveLength(2);
  });

  it('pauses all mail for a while, and lets the person take an unsubscribe back', async () => {
    const lead = { email: 'fay@pref.test', firstName: 'Fay', persona: 'champion', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Pref Co', domain: 'pref.test' } };
    // The pause must arrive during the 2-second wait after the intro, however slow the machine: step jobs
    // wait while this test runs the intro's step itself, and the follow-up's runs once the pause is in.
    const stepper = h.worker('step');
    await stepper.pause();
    expect((await h.post('/v1/triggers', { type: 'lead.upsert', lead })).status).toBe(200);
    expect((await runDueStepOf(h, 'fay@pref.test')).ran).toBe('ran');
    await eventually('intro', async () => mailsTo('fay@pref.test')[0]);
    const [intro] = await h.ctx.db.select().from(messages).where(and(eq(messages.toAddress, 'fay@pref.test'), eq(messages.stepId, 'intro')));
    const link = `${h.http.url}/p/${signToken(h.ctx.settings.trackingSecret, 'preferences', intro!.id)}`;
    const form = (body: string) => fetch(link, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    expect((await form('choice=pause&days=7')).status).toBe(200);
    stepper.resume();
    // The follow-up (due 2s after the intro) waits for the pause to end.
    const waiting = await eventually('follow-up deferred', async () => {
      const [e] = await h.ctx.db.select().from(enrollments).where(eq(enrollments.leadId, intro!.leadId));
      return (e?.progress as { deferred?: { why: string } }).deferred?.why === 'paused' ? e : null;
    });
    expect(waiting.nextDueAt!.getTime()).toBeGreaterThan(Date.now() + 6 * 86_400_000);
    expect(mailsTo('fay@pref.test')).toHaveLength(1);
    expect((await form('choice=pause&days=8')).status).toBe(422);

    expect((await form('choice=unsubscribe')).status).toBe(200);
    expect((await h.ctx.db.select().from(leads).where(eq(leads.email, 'fay@pref.test')))[0]!.status).toBe('unsubscribed');
    expect(await (await fetch(link)).text()).toContain('unsubscribed from everything');
    expect((await form('choice=all')).status).toBe(200);
    const [fay] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'fay@pref.test'));
    expect(fay).toMatchObject({ status: 'active', mailPreference: 'all', pausedUntil: null });
    expect(await h.ctx.db.select().from(suppressions).where(eq(suppressions.email, 'fay@pref.test'))).toEqual([]);
    const kinds = (await h.ctx.db.select().from(signals).where(eq(signals.leadId, fay!.id))).map((x) => `${x.kind}:${x.reason}`);
    expect(kinds).toEqual(expect.arrayContaining(['preference:pause', 'unsubscribe:preference_page', 'preference:all']));
    expect((await fetch(`${h.http.url}/p/not.valid`)).status).toBe(404);
  });
});

describe('import by upload', () => {
  it("streams the operator's multipart upload", async () => {
    const body = new FormData();
    body.append('file', new Blob(['email,persona,account.name\ngil@upload.test,champion,Upload Co\nbad,champion,Upload Co\n'], { type: 'text/csv' }), 'leads.csv');
    const res = await fetch(`${h.http.url}/v1/imports?enroll=false`, { method: 'POST', body });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ rows: 2, created: 1, enrolled: 0, rejected: 1, rejects: [{ line: 3, code: 'invalid_email' }] });
    // From elsewhere, without the admin token, an unsigned upload is refused.
    const unsigned = await fetch(`${h.http.url}/v1/imports`, { method: 'POST', headers: { 'content-type': 'text/csv', 'x-forwarded-for': '203.0.113.9' }, body: 'email\n' });
    expect(unsigned.status).toBe(401);
  });
});

describe('a choice made while a message waits to go out', () => {
  it('cancels a queued newsletter for someone who now keeps only their rep, and holds any mail during a pause', async () => {
    const [account] = await h.ctx.db.insert(accounts).values({ key: 'late.test', name: 'Late Co', domain: 'late.test' }).returning();
    const person = async (email: string, over: Partial<typeof leads.$inferInsert>) => {
      const [lead] = await h.ctx.db.insert(leads).values({ accountId: account!.id, email, persona: 'champion', stage: 'awareness', ...over }).returning();
      const [run] = await h.ctx.db.insert(enrollments).values({ leadId: lead!.id, sequenceId: 'awareness-newsletter', sequenceVersion: 'v', state: 'active', stageEnteredAt: lead!.stageEnteredAt }).returning();
      const [msg] = await h.ctx.db.insert(messages).values({ enrollmentId: run!.id, leadId: lead!.id, sequenceId: 'awareness-newsletter', stepId: 'benchmark', status: 'queued', messageId: `${email}@nurture.test`, templateName: 'value-benchmark', toAddress: email, kind: 'value' }).returning();
      await enqueueSends(h.ctx.queues, [{ messageId: msg!.id }]);
      return msg!;
    };
    const repOnly = await person('kim@late.test', { mailPreference: 'rep_only' });
    const paused = await person('lou@late.test', { pausedUntil: new Date(Date.now() + 7 * 86_400_000) });
    const cancelled = await eventually('the newsletter cancelled', async () => (await h.ctx.db.select().from(messages).where(and(eq(messages.id, repOnly.id), eq(messages.status, 'cancelled'))))[0]);
    expect(cancelled.error).toContain("only their rep's mail");
    const held = await eventually('the pause held', async () => (await h.ctx.db.select().from(activity).where(and(eq(activity.email, 'lou@late.test'), eq(activity.kind, 'deferred'))))[0]);
    expect(held.detail).toContain('the person paused their mail');
    expect((await h.ctx.db.select().from(messages).where(eq(messages.id, paused.id)))[0]!.status).toBe('queued');
    expect(mailsTo('kim@late.test')).toHaveLength(0);
    expect(mailsTo('lou@late.test')).toHaveLength(0);
  });
});
