// `nurture fanout SEQUENCE` starts a fan-out through the same use case as the API;
// `nurture fanout --status [--json]` shows each recent fan-out's progress from its row in Postgres.
import { connectDatabase, migrateDatabase } from '../db/client.js';
import { listFanOuts, startFanOut, type FanOutSummary } from '../usecases/fanOutSegment.js';
import { startRuntime } from './runtime.js';

export async function fanoutCommand(o: { sequence: string; write?: (l: string) => void }): Promise<number> {
  const write = o.write ?? ((l: string) => console.log(l));
  const rt = await startRuntime({ embedded: false, sends: false });
  try {
    const f = await startFanOut(rt.ctx, o.sequence, 'cli');
    const stage = rt.ctx.config.sequences.get(o.sequence)?.stage;
    write(`fan-out ${f.fanoutId} of ${o.sequence} started: up to ${f.audience} leads in ${stage}; follow it with nurture fanout --status`);
    return 0;
  } finally {
    await rt.stop();
  }
}

const HEAD = ['id', 'sequence', 'started', 'progress', 'status'];

const time = (iso: string) => iso.replace(/\.\d{3}Z$/, 'Z');

/** "2,000 of 3,000 (67%), 1,998 enrolled": leads scanned against the audience counted at the start. */
export function progressOf(f: Pick<FanOutSummary, 'scanned' | 'total' | 'enrolled' | 'status'>): string {
  const n = (x: number) => x.toLocaleString('en-US');
  // The audience can grow while it runs: never show more than 100 % or a running one as complete.
  const pct = f.total ? Math.min(f.status === 'done' ? 100 : 99, Math.floor((f.scanned / f.total) * 100)) : f.status === 'done' ? 100 : 0;
  return `${n(f.scanned)} of ${n(Math.max(f.total, f.scanned))} (${pct}%), ${n(f.enrolled)} enrolled`;
}

export function formatFanOutTable(rows: FanOutSummary[]): string[] {
  const cells = rows.map((f) => [
    f.id,
    f.sequence,
    time(f.startedAt),
    progressOf(f),
    f.status === 'done' && f.finishedAt ? `done ${time(f.finishedAt)}` : f.status === 'failed' ? `failed: ${f.error ?? ''}` : f.status,
  ]);
  const widths = HEAD.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => (i === c.length - 1 ? x : x.padEnd(widths[i]!))).join('  ');
  return [line(HEAD), ...cells.map(line)];
}

export async function fanoutStatus(o: { databaseUrl: string; json: boolean; limit?: number; write?: (l: string) => void }): Promise<number> {
  const write = o.write ?? ((l: string) => console.log(l));
  // A database no process has started on yet has no fanouts table: answer "none", not a failed query.
  await migrateDatabase(o.databaseUrl);
  const database = connectDatabase(o.databaseUrl, { max: 2 });
  try {
    const rows = await listFanOuts(database, o.limit ?? 20);
    if (o.json) rows.forEach((r) => write(JSON.stringify(r)));
    else if (!rows.length) write('no fan-outs yet');
    else formatFanOutTable(rows).forEach(write);
    return 0;
  } finally {
    await database.close();
  }
}
