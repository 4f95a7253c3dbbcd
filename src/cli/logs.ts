// `nurture logs [-f] [--json] [--lead email] [--sequence id] [--kind k,…] [-n N]`: the delivery and
// engagement log, one line per event; -f follows new events as they commit (LISTEN/NOTIFY, polling as a net)
// and rides out a database restart: it waits, then resumes after the last event it printed. It reads through
// the same use case as the console's live log and GET /v1/activity (src/usecases/activityFeed.ts).
import postgres from 'postgres';
import { ACTIVITY_CHANNEL, type ActivityRow } from '../db/activity.js';
import { connectDatabase } from '../db/client.js';
import { ActivityTail, activityRowsUpTo, matchesFilter, startingCursor, withoutZone, type ActivityFilter } from '../usecases/activityFeed.js';

export { advanceCursor, GAP_GRACE_MS, isTransientDatabaseError, type Cursor } from '../usecases/activityFeed.js';

export interface LogsOptions {
  databaseUrl: string;
  follow: boolean;
  json: boolean;
  lead?: string;
  sequence?: string;
  kinds?: string[];
  limit: number;
  /** For tests: stop following when aborted. */
  signal?: AbortSignal;
  write?: (line: string) => void;
  /** Where waiting for the database is reported; stderr by default. */
  warn?: (line: string) => void;
  /** Called once the starting point is read: every event committed after this is printed. */
  onFollowing?: () => void;
}

type Row = ActivityRow;

export function formatLogLine(r: Row): string {
  const where = [r.sequenceId, r.stepId].filter(Boolean).join('/') || '-';
  return `${r.at.toISOString()}  ${(r.email ?? '-').padEnd(28)} ${(r.accountName ?? '-').padEnd(18)} ${where.padEnd(36)} ${r.kind.padEnd(10)} ${r.detail}`;
}

export async function logs(o: LogsOptions): Promise<void> {
  const write = o.write ?? ((l: string) => console.log(l));
  const warn = o.warn ?? ((l: string) => console.error(l));
  const { db, close } = connectDatabase(o.databaseUrl, { max: 2 });
  const filter: ActivityFilter = {
    ...(o.lead ? { lead: o.lead.toLowerCase() } : {}),
    ...(o.sequence ? { sequence: o.sequence } : {}),
    ...(o.kinds?.length ? { kinds: o.kinds } : {}),
  };
  const print = (r: Row) => write(o.json ? JSON.stringify(r) : formatLogLine(r));
  try {
    // Where following starts: the newest id, and the ids below it not yet committed.
    const from = await startingCursor(db);
    if (o.limit > 0) (await activityRowsUpTo(db, filter, from.high, o.limit)).forEach(print);
    if (!o.follow) return;
    o.onFollowing?.();

    let failed: ((error: unknown) => void) | undefined;
    const tail = new ActivityTail(db, { listen: (onNotify) => listen(o.databaseUrl, onNotify), from, warn, label: 'nurture logs', onFatal: (e) => failed?.(e) });
    try {
      // Following until told to stop (tests: on `signal`); a fatal error ends it.
      await new Promise<void>((resolve, reject) => {
        const stop = () => resolve();
        failed = reject;
        o.signal?.addEventListener('abort', stop, { once: true });
        if (o.signal?.aborted) stop();
        tail.subscribe((rows) => {
          for (const r of rows) if (matchesFilter(r, filter, null)) print(withoutZone(r));
        }).catch(failed);
      });
    } finally {
      await tail.close();
    }
  } finally {
    await close();
  }
}

/** A connection of its own for LISTEN, made afresh after an outage (postgres.js re-listens only once). */
async function listen(url: string, onNotify: () => void): Promise<{ close(): Promise<void> }> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await sql.listen(ACTIVITY_CHANNEL, onNotify);
  } catch (error) {
    await sql.end({ timeout: 0 }).catch(() => {});
    throw error;
  }
  return { close: () => sql.end({ timeout: 1 }).catch(() => {}) };
}
