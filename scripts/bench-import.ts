// Import benchmark: rows per second through `importLeads` (streamed CSV, checked per row, written in
// batches of one transaction each) beside the same rows sent one by one through upsertLead (one
// transaction per row, what a loop over the webhook's use case does), in the same run, on fresh databases.
// Both enroll as the sample funnel says (stage-entry sequences), so the work per lead is the same.
//   npx tsx scripts/bench-import.ts [--rows 20000] [--batch 500]
// Uses DATABASE_URL / REDIS_URL (default: the local ones on 5432 / 6379); creates and drops its databases.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { closeContext, createContext } from '../src/app.js';
import type { Context } from '../src/context.js';
import { makeSettings } from '../src/config/env.js';
import { upsertLead } from '../src/usecases/enrollLead.js';
import { importLeads } from '../src/usecases/importLeads.js';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '20000' }, batch: { type: 'string', default: '500' }, 'no-enroll': { type: 'boolean', default: false } } });
const ROWS = Number(values.rows);
const BATCH = Number(values.batch);
const ENROLL = !values['no-enroll'];
const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const admin = postgres(base, { max: 1, onnotice: () => {} });

async function withContext<T>(run: (ctx: Context) => Promise<T>): Promise<T> {
  const dbName = `nurture_bench_${randomBytes(4).toString('hex')}`;
  await admin.unsafe(`create database ${dbName}`);
  const url = new URL(base);
  url.pathname = `/${dbName}`;
  const settings = makeSettings({ webhookSecret: `whsec_${randomBytes(24).toString('base64')}`, trackingSecret: randomBytes(24).toString('base64url') });
  const prefix = `bench${randomBytes(3).toString('hex')}`;
  const ctx = await createContext({ databaseUrl: url.toString(), redisUrl, smtpUrl: null, configDir: 'config', templatesDir: 'templates', queuePrefix: prefix, settings, dbPoolSize: 10 });
  try {
    return await run(ctx);
  } finally {
    for (const q of Object.values(ctx.queues) as { obliterate?: (o: { force: boolean }) => Promise<void> }[]) await q.obliterate?.({ force: true }).catch(() => {});
    await closeContext(ctx);
    await admin.unsafe(`drop database if exists ${dbName} with (force)`);
  }
}

const personas = ['champion', 'economic_buyer', 'technical_evaluator'];
const row = (i: number) => [`person${i}@company${i % 500}.example`, `First${i}`, `Last${i}`, personas[i % 3], `Company ${i % 500}`, `company${i % 500}.example`, 'Sam Rivera', 'sam@handrail.example', `crm-${i}`];
const header = 'email,firstName,lastName,persona,account.name,account.domain,owner.name,owner.email,attributes.crmId';
const csv = () =>
  Readable.from(
    (function* () {
      yield `${header}\n`;
      for (let i = 0; i < ROWS; i++) yield `${row(i).join(',')}\n`;
    })(),
  );

const batched = await withContext(async (ctx) => {
  const t = performance.now();
  const r = await importLeads(ctx, csv(), { actor: 'bench', batchSize: BATCH, enroll: ENROLL });
  const again = performance.now();
  const second = await importLeads(ctx, csv(), { actor: 'bench', batchSize: BATCH, enroll: ENROLL });
  return { seconds: (again - t) / 1000, created: r.created, enrolled: r.enrolled, rejected: r.rejected, reimportSeconds: (performance.now() - again) / 1000, reimportUnchanged: second.unchanged };
});

const perRow = await withContext(async (ctx) => {
  const t = performance.now();
  let enrolled = 0;
  for (let i = 0; i < ROWS; i++) {
    const [email, firstName, lastName, persona, name, domain, ownerName, ownerEmail, crmId] = row(i) as string[];
    const r = await upsertLead(ctx, { email: email!, firstName, lastName, persona: persona!, attributes: { crmId }, owner: { name: ownerName!, email: ownerEmail! }, account: { name: name!, domain, attributes: {} } }, { enroll: ENROLL });
    enrolled += r.enrolled.length;
  }
  return { seconds: (performance.now() - t) / 1000, enrolled };
});
await admin.end();

const rate = (s: number) => Math.round(ROWS / s);
console.log(`import benchmark: ${ROWS} rows, ${ENROLL ? 'enrolling per the sample funnel' : '--no-enroll'}`);
console.log(`  importLeads (streamed, batches of ${BATCH}): ${batched.seconds.toFixed(2)}s  ${rate(batched.seconds)} rows/s  (created ${batched.created}, enrolled ${batched.enrolled}, rejected ${batched.rejected})`);
console.log(`  one upsertLead per row:                  ${perRow.seconds.toFixed(2)}s  ${rate(perRow.seconds)} rows/s  (enrolled ${perRow.enrolled})`);
console.log(`  speed-up: ${(perRow.seconds / batched.seconds).toFixed(2)}x`);
console.log(`  re-import of the same file: ${batched.reimportSeconds.toFixed(2)}s  ${rate(batched.reimportSeconds)} rows/s, ${batched.reimportUnchanged} unchanged`);
