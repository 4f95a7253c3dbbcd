// Personalised renders per second: compiled once (cache) vs compiling MJML for every send.
// Run: npx tsx scripts/bench-render.ts [leads=5000] [naive=200]
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  compileTemplate, loadTemplateSource, renderMessage, TemplateCache,
  type RenderContext, type RenderOptions,
} from '../src/render/index.js';

const templatesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../templates');
const TEMPLATE = 'value-benchmark';
const leads = Number(process.argv[2] ?? 5000);
const naiveSends = Number(process.argv[3] ?? 200);

const personas = ['champion', 'practitioner', 'economic-buyer', 'technical-evaluator'];
const industries = ['Logistics', 'Fintech', 'Healthcare', null, 'SaaS'];

function leadContext(i: number): RenderContext {
  return {
    lead: {
      email: `lead${i}@account${i % 700}.test`, firstName: `Lead${i}`.replace(/\d/g, (d) => 'abcdefghij'[Number(d)]!),
      lastName: 'Example', title: i % 3 ? 'Onboarding lead' : null, persona: personas[i % personas.length]!,
      stage: 'engaged', timeZone: 'Europe/Berlin', attributes: { plan: i % 2 ? 'growth' : 'scale' },
    },
    account: { name: `Account ${i % 700} & Co`, domain: `account${i % 700}.test`, industry: industries[i % industries.length] ?? null, tier: 'mid', attributes: {} },
    owner: { name: 'Sam Rivera', email: 'sam@handrail.example', title: 'Onboarding specialist', phone: null },
    sequence: { id: 'seq-onboarding', name: 'Onboarding teams' },
    links: { unsubscribe: `https://t.handrail.example/u/${i}`, preferences: `https://t.handrail.example/p/${i}` },
  };
}

const options = (i: number): RenderOptions => ({
  trackLink: (link) => `https://t.handrail.example/c/${i}/${link.id}`,
  pixelUrl: `https://t.handrail.example/o/${i}.gif`,
});

interface Row { name: string; ops: number; totalMs: number }

async function measure(name: string, count: number, send: (i: number) => Promise<unknown> | unknown): Promise<Row> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await send(i);
  const totalMs = Number(process.hrtime.bigint() - start) / 1e6;
  return { name, ops: count, totalMs };
}

const source = loadTemplateSource(templatesDir, TEMPLATE);
const cache = new TemplateCache();
// Warm up both paths so JIT and module loading do not count against either.
for (let i = 0; i < 50; i++) renderMessage(await cache.get(source), leadContext(i), options(i));
for (let i = 0; i < 5; i++) renderMessage(await compileTemplate(source), leadContext(i), options(i));

const rows = [
  await measure(`cached compile (${leads} distinct leads)`, leads, async (i) => renderMessage(await cache.get(source), leadContext(i), options(i))),
  await measure(`MJML compile per send (${naiveSends} leads)`, naiveSends, async (i) => renderMessage(await compileTemplate(source), leadContext(i), options(i))),
];

const cpu = os.cpus()[0];
console.log(`template  ${TEMPLATE} (${source.body.split('\n').length} MJML lines, ${source.includes.length} partials)`);
console.log(`machine   ${cpu?.model ?? 'unknown cpu'}, ${os.cpus().length} cores, node ${process.version}, ${os.platform()} ${os.release()}`);
console.log('');
console.log(`${'path'.padEnd(40)} ${'sends'.padStart(6)} ${'ops/s'.padStart(9)} ${'mean ms'.padStart(9)}`);
for (const row of rows) {
  const opsPerSecond = (row.ops / row.totalMs) * 1000;
  console.log(`${row.name.padEnd(40)} ${String(row.ops).padStart(6)} ${opsPerSecond.toFixed(0).padStart(9)} ${(row.totalMs / row.ops).toFixed(3).padStart(9)}`);
}
const [cached, naive] = rows;
if (cached && naive) console.log(`\nspeed-up  ${((cached.ops / cached.totalMs) / (naive.ops / naive.totalMs)).toFixed(0)}x`);
