// Gathers one row per fault from the chaos files (each appends to a JSON-lines file in a run-wide temp
// dir) and, when the run ends, prints the table and writes it to test/chaos/results.md for the README.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    chaosTmpDir: string;
  }
}

interface Row {
  order: number;
  fault: string;
  expected: number;
  delivered: number;
  duplicates: number;
  lost: number;
  uncertain: number;
  note: string;
}

export default async function setup(project: TestProject) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nurture-chaos-'));
  // As root, the embedded Postgres of the restart fault runs as "postgres" and must walk through here.
  await chmod(dir, 0o711);
  project.provide('chaosTmpDir', dir);
  const started = Date.now();
  return async () => {
    const text = await readFile(path.join(dir, 'results.jsonl'), 'utf8').catch(() => '');
    const rows = text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Row)
      .sort((a, b) => a.order - b.order);
    await rm(dir, { recursive: true, force: true });
    if (!rows.length) return;
    const table = [
      '| fault | messages expected | delivered | duplicates | lost | uncertain | notes |',
      '|---|---:|---:|---:|---:|---:|---|',
      ...rows.map((r) => `| ${r.fault} | ${r.expected} | ${r.delivered} | ${r.duplicates} | ${r.lost} | ${r.uncertain} | ${r.note} |`),
    ].join('\n');
    const md = [
      '# Chaos results',
      '',
      `Measured by \`npm run test:chaos\` on ${new Date().toISOString().slice(0, 10)} (${os.cpus().length} cores, Node ${process.versions.node}), ` +
        `${Math.round((Date.now() - started) / 1000)} s for the whole run. Worker processes are \`nurture worker\`; Redis, Postgres ` +
        'and the SMTP relay are real. "delivered" counts distinct messages the relay answered 250; "duplicates" counts extra copies ' +
        'the relay received of one Message-ID or of one lead + step; "lost" counts lead + step pairs left without a sent, ' +
        'uncertain (or expected bounced) message, plus rows marked sent that the relay never accepted; "uncertain" counts rows ' +
        'nurture reports as possibly delivered and will not resend on its own.',
      '',
      table,
      '',
    ].join('\n');
    await writeFile(path.resolve(import.meta.dirname, 'results.md'), md);
    console.log(`\n${table}\n`);
  };
}
