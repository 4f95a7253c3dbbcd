// Leads from a CRM export: a CSV streamed row by row (bounded memory, however long the file), each row
// checked by the same rules as a webhook's lead.upsert (checkLead), then written in batches, one
// transaction per batch, through the same upsert (upsertLeadInTx). A row that fails is reported with its
// line number and the reason and the rest go on. Importing the same file again changes nothing.
import { Transform, type Readable } from 'node:stream';
import { parse } from 'csv-parse';
import { inArray } from 'drizzle-orm';
import type { Context } from '../context.js';
import { auditLog, leads } from '../db/schema.js';
import { enqueueFollowups, noFollowups } from './applyDecision.js';
import { checkLead, upsertLeadInTx } from './enrollLead.js';
import { UseCaseError } from './errors.js';
import { LeadInput } from './inputs.js';
import { leadFromRow, resolveColumns, type ColumnMapping } from './leadColumns.js';
import { replanDeferred } from './replanDeferred.js';

export interface ImportOptions {
  mapping?: ColumnMapping;
  dryRun?: boolean;
  /** false: record the leads, enroll them in nothing. */
  enroll?: boolean;
  batchSize?: number;
  /** Who asked (kept in the audit log). */
  actor: string;
  /** The file's size, when known: progress can then say how far along it is. */
  totalBytes?: number | null;
  onProgress?: (p: ImportProgress) => void;
  onReject?: (r: RejectedRow) => void;
}

export interface ImportProgress {
  rows: number;
  bytes: number;
  totalBytes: number | null;
  elapsedMs: number;
}

export interface RejectedRow {
  /** The line of the file the row ends on (the header is line 1). */
  line: number;
  email: string | null;
  code: string;
  reason: string;
}

export interface ImportResult {
  dryRun: boolean;
  rows: number;
  created: number;
  updated: number;
  unchanged: number;
  /** New leads whose address was already suppressed: stored, never enrolled or mailed. */
  suppressed: number;
  enrolled: number;
  rejected: number;
  /** The first REJECTS_KEPT rejected rows (all of them go to onReject). */
  rejects: RejectedRow[];
  ignoredColumns: string[];
  elapsedMs: number;
}

const REJECTS_KEPT = 1000;

export async function importLeads(ctx: Context, source: Readable, opts: ImportOptions): Promise<ImportResult> {
  const started = Date.now();
  const batchSize = opts.batchSize ?? 500;
  const result: ImportResult = { dryRun: !!opts.dryRun, rows: 0, created: 0, updated: 0, unchanged: 0, suppressed: 0, enrolled: 0, rejected: 0, rejects: [], ignoredColumns: [], elapsedMs: 0 };
  const reject = (r: RejectedRow) => {
    result.rejected++;
    if (result.rejects.length < REJECTS_KEPT) result.rejects.push(r);
    opts.onReject?.(r);
  };
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      cb(null, chunk);
    },
  });
  const parser = parse({ bom: true, relax_column_count: true, skip_empty_lines: true, info: true });
  source.on('error', (err) => parser.destroy(err));
  source.pipe(counter).pipe(parser);

  let columns: ReturnType<typeof resolveColumns> | null = null;
  let batch: { line: number; email: string; input: LeadInput }[] = [];
  const progress = () => opts.onProgress?.({ rows: result.rows, bytes, totalBytes: opts.totalBytes ?? null, elapsedMs: Date.now() - started });
  const flush = async () => {
    if (!batch.length) return;
    const rows = batch;
    batch = [];
    await (opts.dryRun ? countDry(ctx, rows, result) : writeBatch(ctx, rows, opts, result, reject));
    progress();
  };

  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      if (!columns) {
        columns = resolveColumns(record, opts.mapping);
        result.ignoredColumns = columns.ignored;
        continue;
      }
      result.rows++;
      const line = info.lines;
      if (record.length !== columns.header.length) {
        reject({ line, email: null, code: 'invalid_row', reason: `the row has ${record.length} fields; the header has ${columns.header.length}` });
        continue;
      }
      const raw = leadFromRow(columns, record, opts.mapping);
      const email = typeof raw.email === 'string' ? raw.email : null;
      const parsed = LeadInput.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        reject({ line, email, code: 'invalid_field', reason: `${issue.path.join('.') || 'row'}: ${issue.message}` });
        continue;
      }
      try {
        batch.push({ line, email: checkLead(ctx, parsed.data), input: parsed.data });
      } catch (err) {
        if (!(err instanceof UseCaseError)) throw err;
        reject({ line, email, code: err.code, reason: err.message });
        continue;
      }
      if (batch.length >= batchSize) await flush();
    }
  } catch (err) {
    if (err instanceof UseCaseError) throw err;
    // csv-parse names the line of the fault (an unclosed quote, a stray quote in a field).
    throw new UseCaseError('invalid_csv', `the file is not CSV that can be read: ${(err as Error).message}`, 'file');
  }
  if (!columns) throw new UseCaseError('invalid_csv', 'the file is empty: a header row naming the columns comes first', 'file');
  await flush();
  result.elapsedMs = Date.now() - started;
  if (!opts.dryRun) {
    const { rejects: _r, ignoredColumns: _i, ...counts } = result;
    await ctx.db.insert(auditLog).values({ action: 'import', actor: opts.actor, detail: counts });
  }
  return result;
}

/** A dry run says what would happen: which rows are new and which would update a lead we have. */
async function countDry(ctx: Context, rows: { email: string }[], result: ImportResult): Promise<void> {
  const known = new Set((await ctx.db.select({ email: leads.email }).from(leads).where(inArray(leads.email, rows.map((r) => r.email)))).map((r) => r.email));
  for (const r of rows) {
    if (known.has(r.email)) result.updated++;
    else {
      result.created++;
      known.add(r.email);
    }
  }
}

type Row = { line: number; email: string; input: LeadInput };

function waves(rows: Row[]): Row[][] {
  const out: { rows: Row[]; emails: Set<string> }[] = [];
  for (const r of rows) {
    // After the last wave that already has this person.
    let i = out.length;
    while (i > 0 && !out[i - 1]!.emails.has(r.email)) i--;
    const wave = out[i] ?? (out[i] = { rows: [], emails: new Set() });
    wave.rows.push(r);
    wave.emails.add(r.email);
  }
  return out.map((w) => w.rows);
}

/**
 * One transaction for the batch. Should any row fail in it (an erased address, a constraint), the batch
 * is rolled back and its rows written one by one, so only the failing row is rejected.
 */
async function writeBatch(ctx: Context, rows: Row[], opts: ImportOptions, result: ImportResult, reject: (r: RejectedRow) => void): Promise<void> {
  const upsertOpts = { enroll: opts.enroll !== false, skipUnchanged: true };
  const run = async (group: Row[]) => {
    const out = noFollowups();
    const done = await ctx.db.transaction(async (tx) => {
      const rs = [];
      // Rows for different people are issued together: postgres.js pipelines them on the transaction's
      // one connection, so a batch costs round trips per wave, not per row. Only a person named twice in a
      // batch waits for the next wave, so their rows apply in file order.
      for (const wave of waves(group)) rs.push(...(await Promise.all(wave.map((r) => upsertLeadInTx(ctx, tx, r.email, r.input, upsertOpts, out)))));
      return rs;
    });
    await enqueueFollowups(ctx, out);
    for (const r of done) {
      if (r.created) result.created++;
      else if (r.unchanged) result.unchanged++;
      else result.updated++;
      if (r.created && r.suppressed) result.suppressed++;
      result.enrolled += r.enrolled.length;
      if (!r.created && !r.unchanged) await replanDeferred(ctx, { leadId: r.leadId });
    }
  };
  try {
    await run(rows);
  } catch {
    for (const r of rows) {
      try {
        await run([r]);
      } catch (err) {
        reject({ line: r.line, email: r.email, code: err instanceof UseCaseError ? err.code : 'failed', reason: (err as Error).message });
      }
    }
  }
}
