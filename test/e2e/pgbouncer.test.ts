// nurture behind a real PgBouncer in transaction mode, as docs/scale.md says to run it: DB_PREPARE=0
// (`prepare=false` in the URL), with PgBouncer holding fewer server connections than the process's pool,
// so transactions keep changing server connections under it. Start-up migrations, HTTP triggers, a
// segmented fan-out, the sends and the live activity feed all go through it; and without
// `prepare=false` the same PgBouncer does break a transaction, so passing here means something.
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { eq, inArray } from 'drizzle-orm';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { listenActivity, type ActivityWithZone } from '../../src/db/activity.js';
import { closeContext, createContext } from '../../src/app.js';
import { databaseUrlWith, makeSettings } from '../../src/config/env.js';
import { connectDatabase, migrateDatabase, refuseLostPreparedStatements } from '../../src/db/client.js';
import { accounts, enrollments, fanouts, leads, messages } from '../../src/db/schema.js';
import { packageRoot } from '../../src/packageRoot.js';
import { ActivityTail } from '../../src/usecases/activityFeed.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { PGBOUNCER_BINARY, PGBOUNCER_INSTALL_HINT, startPgBouncer, type PgBouncer } from '../support/pgbouncer.js';

const skip = !PGBOUNCER_BINARY;
if (skip) console.warn(`pgbouncer is not installed (${PGBOUNCER_INSTALL_HINT}): the PgBouncer tests are skipped`);

/** PgBouncer's server connections per database: nurture's pool is 10, and each queue runs 5 jobs at once. */
const SERVER_CONNECTIONS = 3;
const LEADS = 300;
/** A send, its render and its writes take well under this each, even on a busy two-core machine. */
const PER_MESSAGE_MS = 100;

let bouncer: PgBouncer;
let h: Harness;
let dbName = '';
/** A second database, empty until four start-ups migrate it at once; later the prepared-statement check's own. */
let scratch = '';
/** Every failed attempt of every job, retried or not: a prepared statement gone missing would show here. */
const failures: string[] = [];

const directUrl = (db: string) => {
  const u = new URL(inject('databaseUrl'));
  u.pathname = `/${db}`;
  return u.toString();
};
const direct = (db = new URL(inject('databaseUrl')).pathname.slice(1)) => postgres(directUrl(db), { max: 1, onnotice: () => {} });
const throughBouncer = (db: string) => databaseUrlWith(bouncer.url(db), { prepare: false });

beforeAll(async () => {
  if (skip) return;
  bouncer = await startPgBouncer(inject('databaseUrl'), { poolSize: SERVER_CONNECTIONS });
  h = await startHarness({ configDir: 'test/fixtures/config/e2e', databaseUrlFor: (_direct, db) => throughBouncer(db) });
  dbName = new URL(h.databaseUrl).pathname.slice(1);
  for (const w of h.workers.all) w.on('failed', (job, err) => failures.push(`${w.name} ${job?.id ?? '?'}: ${err.message}`));
});
afterAll(async () => {
  await h?.close();
  if (scratch) {
    const sql = direct();
    await sql.unsafe(`drop database if exists ${scratch} with (force)`);
    await sql.end();
  }
  await bouncer?.close();
});

/** Fails with `what` when `work` takes longer than `ms` (a deadlock would otherwise just hang). */
async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not finish in ${ms} ms`)), ms)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

const trigger = (email: string) => ({
  type: 'lead.upsert',
  lead: { email, firstName: 'Bo', persona: 'champion', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Beta Co', domain: 'beta.test' } },
});
const mailsTo = (email: string) => h.smtp.mails.filter((m) => m.envelopeTo[0] === email);

describe.skipIf(skip)('behind PgBouncer in transaction mode (DB_PREPARE=0)', () => {
  it('reaches Postgres only through PgBouncer, without prepared statements', () => {
    const u = new URL(h.databaseUrl);
    expect(u.port).toBe(String(bouncer.port));
    expect(u.searchParams.get('prepare')).toBe('false');
  });

  it("runs four processes' start-up migrations at once, on an empty database and on a live one: each migration once, nothing left locked", async () => {
    scratch = `nurture_t_${randomBytes(5).toString('hex')}`;
    const admin = direct();
    await admin.unsafe(`create database ${scratch}`);
    await admin.end();
    const expected = readMigrationFiles({ migrationsFolder: join(packageRoot, 'drizzle') });
    // Eight start-ups over two databases' three server connections each, the live one busy with workers:
    // those waiting for the lock hold server connections while the rest queue in PgBouncer for one.
    const startUps = [scratch, dbName].flatMap((db) => Array.from({ length: 4 }, () => migrateDatabase(throughBouncer(db))));
    await within(20_000 + expected.length * 1_000, 'eight concurrent migrations', Promise.all(startUps));

    for (const db of [scratch, dbName]) {
      const sql = direct(db);
      try {
        const applied = await sql<{ hash: string }[]>`select hash from drizzle.__drizzle_migrations order by created_at`;
        expect(applied.map((r) => r.hash)).toEqual(expected.map((m) => m.hash));
        const [locks] = await sql<{ n: number }[]>`select count(*)::int as n from pg_locks where locktype = 'advisory' and database = (select oid from pg_database where datname = current_database())`;
        expect(locks!.n).toBe(0);
      } finally {
        await sql.end();
      }
    }
    // The empty one now has nurture's tables.
    const db = connectDatabase(throughBouncer(scratch), { max: 1 });
    try {
      expect(await db.db.select().from(leads)).toEqual([]);
    } finally {
      await db.close();
    }
  });

  it(`fans a segmented send out to ${LEADS} leads: each gets exactly one message, delivered once`, async () => {
    const [big, small] = await h.ctx.db
      .insert(accounts)
      .values([{ key: 'big.test', name: 'Big Co', tier: 'enterprise' }, { key: 'small.test', name: 'Small Co', tier: 'smb' }])
      .returning();
    await h.ctx.db.insert(leads).values([
      ...Array.from({ length: LEADS }, (_, i) => ({ accountId: big!.id, email: `buyer${i}@big.test`, firstName: `Buyer${i}`, persona: 'economic_buyer', stage: 'awareness' })),
      // Outside the audience (an smb account, another persona): sent nothing.
      ...Array.from({ length: 20 }, (_, i) => ({ accountId: small!.id, email: `buyer${i}@small.test`, firstName: `Small${i}`, persona: 'economic_buyer', stage: 'awareness' })),
      ...Array.from({ length: 20 }, (_, i) => ({ accountId: big!.id, email: `champ${i}@big.test`, firstName: `Champ${i}`, persona: 'champion', stage: 'awareness' })),
    ]);
    const budget = 20_000 + LEADS * PER_MESSAGE_MS;

    const started = await h.post('/v1/sequences/awareness-newsletter/fanout', {});
    expect(started.status).toBe(200);
    // The audience counts everyone at the stage with the persona; the smb account is filtered out as it pages.
    expect(started.json).toMatchObject({ status: 'running', audience: LEADS + 20 });
    const fanoutId: string = started.json.fanoutId;
    const row = await eventually('the fan-out done', async () => {
      const [f] = await h.ctx.db.select().from(fanouts).where(eq(fanouts.id, fanoutId));
      return f?.status === 'done' || f?.status === 'failed' ? f : null;
    }, budget);
    expect(row).toMatchObject({ status: 'done', enrolled: LEADS, error: null });
    await eventually(`${LEADS} messages sent`, async () => {
      const sent = await h.ctx.db.select({ id: messages.id }).from(messages).where(eq(messages.status, 'sent'));
      return sent.length >= LEADS;
    }, budget);

    const all = await h.ctx.db.select().from(messages);
    expect(all).toHaveLength(LEADS);
    expect(all.every((m) => m.status === 'sent' && /^buyer\d+@big\.test$/.test(m.toAddress))).toBe(true);
    expect(new Set(all.map((m) => m.leadId)).size).toBe(LEADS);
    const delivered = h.smtp.mails.filter((m) => m.envelopeTo[0]!.endsWith('@big.test') || m.envelopeTo[0]!.endsWith('@small.test'));
    expect(delivered).toHaveLength(LEADS);
    expect(new Set(delivered.map((m) => m.envelopeTo[0])).size).toBe(LEADS);
  }, 2 * (20_000 + LEADS * PER_MESSAGE_MS));

  it('takes triggers through the HTTP API: ten people at once and a redelivered webhook once, and their sequence runs on', async () => {
    const people = Array.from({ length: 10 }, (_, i) => `champion${i}@beta.test`);
    const results = await Promise.all(people.map((email) => h.post('/v1/triggers', trigger(email))));
    expect(results.map((r) => r.status)).toEqual(people.map(() => 200));
    expect(results.every((r) => r.json.created === true && r.json.enrolled.length === 1)).toBe(true);
    // One webhook delivered five times at once: the receipt's transaction lets one through.
    const id = `msg_${randomUUID()}`;
    const redelivered = await Promise.all(Array.from({ length: 5 }, () => h.post('/v1/triggers', trigger('again@beta.test'), { id })));
    expect(redelivered.every((r) => r.status === 200 || r.status === 409)).toBe(true);
    expect(redelivered.some((r) => r.status === 200)).toBe(true);

    // The intro at once and the follow-up after the sequence's 2 s wait, to each: step and send jobs, delayed ones too.
    const everyone = [...people, 'again@beta.test'];
    await eventually('an intro and a follow-up to each', async () => everyone.every((e) => mailsTo(e).length >= 2), 30_000 + everyone.length * 2 * PER_MESSAGE_MS);
    for (const e of everyone) expect(mailsTo(e)).toHaveLength(2);
    const ids = (await h.ctx.db.select({ id: leads.id }).from(leads).where(inArray(leads.email, everyone))).map((l) => l.id);
    expect(ids).toHaveLength(everyone.length);
    expect(await h.ctx.db.select().from(enrollments).where(inArray(enrollments.leadId, ids))).toHaveLength(everyone.length);
    // The relay has them all; the rows say so once each send's mark has committed (a moment later).
    const sent = await eventually('every row marked sent', async () => {
      const rows = await h.ctx.db.select().from(messages).where(inArray(messages.leadId, ids));
      return rows.every((m) => m.status === 'sent') ? rows : null;
    });
    expect(sent).toHaveLength(everyone.length * 2);
    for (const e of everyone) expect(mailsTo(e)).toHaveLength(2);
  });

  it("follows the activity log live as the console does: LISTEN doesn't reach through transaction pooling, the 2 s poll does", async () => {
    // The follower the HTTP server gives the console and /v1/activity/stream, built the same way (and
    // counting the notifications that wake it).
    let notified = 0;
    const tail = new ActivityTail(h.ctx.db, { listen: (onNotify) => listenActivity(h.ctx.database.sql, () => (notified++, onNotify())) });
    const seen: ActivityWithZone[] = [];
    // Resolves once the tail has its starting place: what the trigger writes can only come from following.
    const unsubscribe = await tail.subscribe((rows) => seen.push(...rows.filter((r) => r.email === 'live@beta.test')));
    try {
      expect((await h.post('/v1/triggers', trigger('live@beta.test'))).status).toBe(200);
      await eventually('the new lead followed to its first send', async () => seen.some((r) => r.kind === 'sent'), 20_000);
    } finally {
      unsubscribe();
      await tail.close();
    }
    expect(seen.map((r) => r.kind)).toEqual(expect.arrayContaining(['lead_created', 'enrolled', 'sent']));
    // Each commit notified the server connection that ran LISTEN, which was back in PgBouncer's pool.
    expect(notified).toBe(0);
  });

  it('needs prepare=false: without it, transactions that land on another server connection fail, or are lost without an error', async () => {
    // On the scratch database, so no worker takes server connections in between. One client connection
    // runs a transaction; a second one then takes the server connection it just freed (PgBouncer hands out
    // the most recently freed first) and holds it, so the first one's next transaction runs on another,
    // where the statements it prepared last time do not exist.
    const roundsOn = async (url: string, label: string) => {
      const database = connectDatabase(url, { max: 1 });
      const holder = postgres(throughBouncer(scratch), { max: 1, onnotice: () => {} });
      const errors: string[] = [];
      const written: string[] = [];
      const failed = (e: { cause?: Error } & Error) => errors.push((e.cause ?? e).message);
      // A drizzle transaction, as nurture's use cases write (drizzle never names its statements, but
      // postgres.js's own COMMIT is one), and a postgres.js query in a transaction, as migrations run.
      const write = (key: string) => database.db.transaction(async (tx) => void (await tx.insert(accounts).values({ key, name: key }))).then(() => written.push(key), failed);
      const read = (n: number) => database.sql.begin((tx) => tx`select ${n}::int as n`).catch(failed);
      try {
        for (let round = 0; round < 3; round++) {
          await write(`${label}-before-${round}.test`);
          await read(round);
          let release!: () => void;
          const released = new Promise<void>((r) => (release = r));
          let holding!: () => void;
          const held = new Promise<void>((r) => (holding = r));
          const hold = holder.begin(async (tx) => {
            await tx`select 1`;
            holding();
            await released;
          });
          await held;
          await write(`${label}-during-${round}.test`);
          await read(round);
          release();
          await hold;
        }
      } finally {
        await database.close();
        await holder.end();
      }
      const sql = direct(scratch);
      const kept = (await sql<{ key: string }[]>`select key from accounts where key = any(${written})`.finally(() => sql.end())).map((r) => r.key);
      return { errors, lost: written.filter((k) => !kept.includes(k)) };
    };
    expect(await roundsOn(throughBouncer(scratch), 'off')).toEqual({ errors: [], lost: [] });

    const preparing = bouncer.url(scratch);
    expect(preparing).not.toMatch(/prepare=/);
    const { errors, lost } = await roundsOn(preparing, 'on');
    // A query in a transaction fails outright…
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => /^prepared statement "\w+" does not exist$/.test(e))).toBe(true);
    // …and worse, a transaction whose COMMIT (a prepared statement of postgres.js's own) was missing is
    // rolled back: postgres.js sends the COMMIT again into the aborted transaction, and Postgres answers
    // a COMMIT there with a ROLLBACK, not an error. The write is reported done and is gone.
    expect(lost.length).toBeGreaterThan(0);
  });

  it('refuses to start with prepared statements on behind it, saying to set DB_PREPARE=0; starts with them off, or on Postgres itself', async () => {
    const start = (databaseUrl: string) =>
      createContext({
        databaseUrl,
        redisUrl: inject('redisUrl'),
        smtpUrl: null,
        configDir: 'test/fixtures/config/e2e',
        templatesDir: 'templates',
        queuePrefix: `t${randomBytes(4).toString('hex')}`,
        settings: makeSettings({ webhookSecret: 'whsec_pgbouncer_refusal', trackingSecret: 'pgbouncer-refusal' }),
      });
    await expect(start(bouncer.url(scratch))).rejects.toThrow(/through a pooler that gives each transaction another server connection .*set DB_PREPARE=0/);
    for (const url of [throughBouncer(scratch), directUrl(scratch)]) await closeContext(await start(url));
    await expect(refuseLostPreparedStatements(directUrl(scratch))).resolves.toBeUndefined();
  });

  it('left nothing failed: no job attempt, message or fan-out; Postgres saw at most PgBouncer\'s server connections', async () => {
    expect(failures).toEqual([]);
    // (The last lead's follow-up may still be on its way: only ends other than sent count here.)
    expect(await h.ctx.db.select().from(messages).where(inArray(messages.status, ['failed', 'bounced', 'uncertain']))).toEqual([]);
    expect(await h.ctx.db.select().from(fanouts).where(eq(fanouts.status, 'failed'))).toEqual([]);
    const sql = direct();
    try {
      const [backends] = await sql<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where datname = ${dbName}`;
      expect(backends!.n).toBeGreaterThan(0);
      expect(backends!.n).toBeLessThanOrEqual(SERVER_CONNECTIONS);
    } finally {
      await sql.end();
    }
  });
});
