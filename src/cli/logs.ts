// `nurture logs [-f] [--json] [--lead email] [--sequence id] [--kind k,…] [--limit n]`: the delivery and
// engagement log, one line per event; -f follows new events as they commit (LISTEN/NOTIFY, polling as a net)
// and rides out a database restart: it waits, then resumes after the last event it printed.
import { and, desc, eq, getTableColumns, gt, inArray, lte, or, sql as sqlText, type SQL } from 'drizzle-orm';
import postgres from 'postgres';
import { connectDatabase } from '../db/client.js';
import { ACTIVITY_CHANNEL } from '../db/activity.js';
import { activity } from '../db/schema.js';

export interface LogsOptions {
  databaseUrl: string;
  follow: boolean;
  json: boolean;
  lead?: string;
  sequence?: string;
  kinds?: string[];
  limit: number;
  /** For tests: stop following after this many ms. */
  followFor?: number;
  /** For tests: stop following when aborted. */
  signal?: AbortSignal;
  write?: (line: string) => void;
  /** Where waiting for the database is reported; stderr by default. */
  warn?: (line: string) => void;
}

type Row = typeof activity.$inferSelect;

export function formatLogLine(r: Row): string {
  const where = [r.sequenceId, r.stepId].filter(Boolean).join('/') || '-';
  return `${r.at.toISOString()}  ${(r.email ?? '-').padEnd(28)} ${(r.accountName ?? '-').padEnd(18)} ${where.padEnd(36)} ${r.kind.padEnd(10)} ${r.detail}`;
}

/**
 * What following has handled: every activity id up to `high`, except the `gaps`. Ids are taken when a
 * transaction inserts and become visible when it commits, so a later id can show up first; the ids skipped
 * meanwhile stay open for `GAP_GRACE_MS` (a slow transaction still commits into them; a rolled-back one
 * never will) and are printed if they appear. Nothing is printed twice, nothing committed in time missed.
 */
export interface Cursor {
  high: number;
  gaps: Array<{ from: number; to: number; since: number }>;
}

export const GAP_GRACE_MS = 60_000;
const PAGE = 1000;

/** The cursor after `ids` (ascending: the late ones inside gaps, then new ones past `high`) were seen at `now`. */
export function advanceCursor(cursor: Cursor, ids: readonly number[], now: number, graceMs = GAP_GRACE_MS): Cursor {
  let gaps = cursor.gaps;
  let high = cursor.high;
  for (const id of ids) {
    if (id <= high) {
      gaps = gaps.flatMap((g) =>
        id < g.from || id > g.to ? [g] : [...(id > g.from ? [{ ...g, to: id - 1 }] : []), ...(id < g.to ? [{ ...g, from: id + 1 }] : [])],
      );
      continue;
    }
    if (id > high + 1) gaps = [...gaps, { from: high + 1, to: id - 1, since: now }];
    high = id;
  }
  return { high, gaps: gaps.filter((g) => now - g.since < graceMs) };
}

/** A connection lost or refused, or a server shutting down or starting up: worth waiting out. */
export function isTransientDatabaseError(error: unknown): boolean {
  for (let e = error as { code?: unknown; cause?: unknown } | undefined; e && typeof e === 'object'; e = e.cause as typeof e) {
    const code = typeof e.code === 'string' ? e.code : undefined;
    if (!code) continue;
    // SQLSTATE: 08 connection exception, 57P01-57P03 shutdown / crash / cannot connect now, 53 resources.
    if (/^[0-9A-Z]{5}$/.test(code)) return /^(08|57P0[123]|53)/.test(code);
    // postgres.js's and Node's own: CONNECTION_CLOSED, CONNECT_TIMEOUT, ECONNREFUSED, ECONNRESET, …
    return true;
  }
  return false;
}

export async function logs(o: LogsOptions): Promise<void> {
  const write = o.write ?? ((l: string) => console.log(l));
  const warn = o.warn ?? ((l: string) => console.error(l));
  const { db, close } = connectDatabase(o.databaseUrl, { max: 2 });
  const filters = (): SQL[] => [
    ...(o.lead ? [eq(activity.email, o.lead.toLowerCase())] : []),
    ...(o.sequence ? [eq(activity.sequenceId, o.sequence)] : []),
    ...(o.kinds?.length ? [inArray(activity.kind, o.kinds)] : []),
  ];
  const print = (r: Row) => write(o.json ? JSON.stringify(r) : formatLogLine(r));
  let listener: Listener | undefined;
  try {
    // Where following starts: the newest id, and the ids below it not yet committed.
    const latest = (await db.select({ id: activity.id }).from(activity).orderBy(desc(activity.id)).limit(PAGE)).map((r) => r.id).reverse();
    let cursor = advanceCursor({ high: (latest[0] ?? 1) - 1, gaps: [] }, latest, Date.now());
    const recent = o.limit > 0 ? await db.select().from(activity).where(and(lte(activity.id, cursor.high), ...filters())).orderBy(desc(activity.id)).limit(o.limit) : [];
    recent.reverse().forEach(print);
    if (!o.follow) return;

    const deadline = o.followFor ? Date.now() + o.followFor : Infinity;
    const stopped = () => Date.now() >= deadline || o.signal?.aborted === true;
    let wake: () => void = () => {};
    const wait = (ms: number) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.min(ms, Math.max(0, deadline - Date.now())));
        o.signal?.addEventListener('abort', done, { once: true });
        wake = done;
        function done() {
          clearTimeout(t);
          o.signal?.removeEventListener('abort', done);
          resolve();
        }
      });
    let retryMs = 0;
    while (!stopped()) {
      try {
        listener ??= await listen(o.databaseUrl, () => wake());
        // Unfiltered, to learn which ids exist; `match` says which to print.
        const open = cursor.gaps.map((g) => sqlText`${activity.id} between ${g.from} and ${g.to}`);
        const rows = await db
          .select({ ...getTableColumns(activity), match: filters().length ? sqlText<boolean>`(${and(...filters())})` : sqlText<boolean>`true` })
          .from(activity)
          .where(or(gt(activity.id, cursor.high), ...open))
          .orderBy(activity.id)
          .limit(PAGE);
        if (retryMs) warn(`nurture logs: the database is back; resuming after event #${cursor.high}`);
        retryMs = 0;
        for (const { match, ...row } of rows) if (match) print(row);
        cursor = advanceCursor(cursor, rows.map((r) => r.id), Date.now());
        if (rows.length === PAGE) continue;
        // Polling is the net under LISTEN (a notification is lost while its connection is down).
        await wait(2000);
      } catch (error) {
        if (!isTransientDatabaseError(error)) throw error;
        // The listening connection went with the server: listen again once it is back.
        await listener?.close();
        listener = undefined;
        retryMs = Math.min(Math.max(retryMs * 2, 250), 10_000);
        warn(`nurture logs: lost the database (${messageOf(error)}); retrying in ${(retryMs / 1000).toFixed(retryMs < 1000 ? 2 : 0)} s…`);
        await wait(retryMs);
      }
    }
  } finally {
    await listener?.close();
    await close();
  }
}

interface Listener {
  close(): Promise<void>;
}

/** A connection of its own for LISTEN, made afresh after an outage (postgres.js re-listens only once). */
async function listen(url: string, onNotify: () => void): Promise<Listener> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await sql.listen(ACTIVITY_CHANNEL, onNotify);
  } catch (error) {
    await sql.end({ timeout: 0 }).catch(() => {});
    throw error;
  }
  return { close: () => sql.end({ timeout: 1 }).catch(() => {}) };
}

function messageOf(error: unknown): string {
  const cause = (error as { cause?: unknown }).cause;
  const e = cause instanceof Error ? cause : error;
  return e instanceof Error ? e.message || (e as { code?: string }).code || e.name : String(e);
}
