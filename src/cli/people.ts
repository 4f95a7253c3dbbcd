// `nurture import`, `nurture export` and `nurture erase`: the same use cases the HTTP routes call.
import { createReadStream, createWriteStream, statSync, writeFileSync, type WriteStream } from 'node:fs';
import { userInfo } from 'node:os';
import { eraseLead } from '../usecases/eraseLead.js';
import { exportLead } from '../usecases/exportLead.js';
import { importLeads, type ImportProgress } from '../usecases/importLeads.js';
import { loadMapping } from '../usecases/leadColumns.js';
import { startRuntime } from './runtime.js';

const actor = () => `the CLI (${userInfo().username})`;

export async function importCommand(o: { file: string; mapping?: string; dryRun: boolean; enroll: boolean; report?: string; batch?: number; write?: (l: string) => void }): Promise<number> {
  const write = o.write ?? ((l: string) => console.log(l));
  const mapping = o.mapping ? loadMapping(o.mapping) : undefined;
  const reportPath = o.report ?? `${o.file}.rejected.csv`;
  // Opened at the first rejected row, so a clean file leaves no empty report behind; a dry run writes
  // nothing unless asked to with --report.
  const reporting = !o.dryRun || o.report !== undefined;
  let report = null as WriteStream | null;
  const reject = (line: string) => {
    if (!reporting) return;
    if (!report) (report = createWriteStream(reportPath)).write('line,email,code,reason\n');
    report.write(line);
  };
  const tty = process.stderr.isTTY;
  let lastLine = 0;
  const rt = await startRuntime({ embedded: false, sends: false });
  try {
    const r = await importLeads(rt.ctx, createReadStream(o.file), {
      ...(mapping ? { mapping } : {}),
      dryRun: o.dryRun,
      enroll: o.enroll,
      actor: actor(),
      totalBytes: statSync(o.file).size,
      ...(o.batch ? { batchSize: o.batch } : {}),
      onReject: (x) => reject(`${x.line},${csv(x.email ?? '')},${x.code},${csv(x.reason)}\n`),
      onProgress: (p) => {
        if (tty) process.stderr.write(`\r${progressBar(p)}`);
        else if (Date.now() - lastLine > 2000) {
          lastLine = Date.now();
          process.stderr.write(`${progressLine(p)}\n`);
        }
      },
    });
    if (tty) process.stderr.write('\n');
    write(`${r.dryRun ? 'dry run: ' : ''}${r.rows} rows in ${(r.elapsedMs / 1000).toFixed(1)}s (${Math.round(r.rows / Math.max(r.elapsedMs / 1000, 0.001))} rows/s)`);
    write(`  ${r.dryRun ? 'would create' : 'created'} ${r.created}, ${r.dryRun ? 'would update' : 'updated'} ${r.updated}${r.dryRun ? '' : `, unchanged ${r.unchanged}, enrolled ${r.enrolled}, suppressed (never mailed) ${r.suppressed}`}`);
    if (r.ignoredColumns.length) write(`  ignored columns: ${r.ignoredColumns.join(', ')} (map them in a mapping file, or to "-" to silence this)`);
    write(`  rejected ${r.rejected}${r.rejected ? (reporting ? `: see ${reportPath}` : ' (--report FILE lists them all with their line numbers)') : ''}`);
    for (const x of r.rejects.slice(0, 10)) write(`    line ${x.line}: ${x.reason}`);
    return r.rejected ? 2 : 0;
  } finally {
    if (report) await new Promise<void>((resolve) => report!.end(() => resolve()));
    await rt.stop();
  }
}

const csv = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

function rateAndEta(p: ImportProgress): { rate: number; eta: string | null; share: number | null } {
  const rate = p.rows / Math.max(p.elapsedMs / 1000, 0.001);
  const share = p.totalBytes ? Math.min(1, p.bytes / p.totalBytes) : null;
  const eta = share && share > 0 ? `${Math.round(((1 - share) * p.elapsedMs) / share / 1000)}s` : null;
  return { rate, eta, share };
}

function progressBar(p: ImportProgress): string {
  const { rate, eta, share } = rateAndEta(p);
  const width = 30;
  const bar = share === null ? '' : `[${'#'.repeat(Math.round(share * width)).padEnd(width, '.')}] ${Math.round(share * 100)}% `;
  return `${bar}${p.rows} rows, ${Math.round(rate)} rows/s${eta ? `, ETA ${eta}` : ''}   `;
}

const progressLine = (p: ImportProgress) => {
  const { rate, eta, share } = rateAndEta(p);
  return `import: ${p.rows} rows${share !== null ? ` (${Math.round(share * 100)}%)` : ''}, ${Math.round(rate)} rows/s${eta ? `, ETA ${eta}` : ''}`;
};

export async function exportCommand(o: { email: string; out?: string; write?: (l: string) => void }): Promise<number> {
  const write = o.write ?? ((l: string) => console.log(l));
  const rt = await startRuntime({ embedded: false, sends: false });
  try {
    const doc = JSON.stringify(await exportLead(rt.ctx, o.email), null, 2);
    if (o.out) {
      writeFileSync(o.out, doc);
      write(`wrote ${o.out}`);
    } else write(doc);
    return 0;
  } finally {
    await rt.stop();
  }
}

export async function eraseCommand(o: { email: string; write?: (l: string) => void }): Promise<number> {
  const write = o.write ?? ((l: string) => console.log(l));
  const rt = await startRuntime({ embedded: false, sends: false });
  try {
    const r = await eraseLead(rt.ctx, o.email, { actor: actor() });
    write(`${o.email} erased: ${Object.entries(r.removed).filter(([, n]) => n).map(([t, n]) => `${n} ${t}`).join(', ')}; only a salted hash stays, on the suppression list`);
    return 0;
  } finally {
    await rt.stop();
  }
}
