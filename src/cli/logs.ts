// `nurture logs [-f] [--json] [--lead email] [--sequence id] [--kind k,…] [--limit n]`: the delivery and
// engagement log, one line per event; -f follows new events as they commit (LISTEN/NOTIFY, polling as a net).
import { and, desc, eq, gt, inArray, type SQL } from 'drizzle-orm';
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
  write?: (line: string) => void;
}

type Row = typeof activity.$inferSelect;

export function formatLogLine(r: Row): string {
  const where = [r.sequenceId, r.stepId].filter(Boolean).join('/') || '-';
  return `${r.at.toISOString()}  ${(r.email ?? '-').padEnd(28)} ${(r.accountName ?? '-').padEnd(18)} ${where.padEnd(36)} ${r.kind.padEnd(10)} ${r.detail}`;
}

export async function logs(o: LogsOptions): Promise<void> {
  const write = o.write ?? ((l: string) => console.log(l));
  const { db, sql, close } = connectDatabase(o.databaseUrl, { max: 2 });
  const filters = (): SQL[] => [
    ...(o.lead ? [eq(activity.email, o.lead.toLowerCase())] : []),
    ...(o.sequence ? [eq(activity.sequenceId, o.sequence)] : []),
    ...(o.kinds?.length ? [inArray(activity.kind, o.kinds)] : []),
  ];
  const print = (r: Row) => write(o.json ? JSON.stringify(r) : formatLogLine(r));
  try {
    const recent = await db.select().from(activity).where(and(...filters())).orderBy(desc(activity.id)).limit(o.limit);
    recent.reverse().forEach(print);
    if (!o.follow) return;
    let last = recent.at(-1)?.id ?? (await db.select({ id: activity.id }).from(activity).orderBy(desc(activity.id)).limit(1))[0]?.id ?? 0;
    let wake: () => void = () => {};
    const listener = await sql.listen(ACTIVITY_CHANNEL, () => wake());
    const deadline = o.followFor ? Date.now() + o.followFor : Infinity;
    while (Date.now() < deadline) {
      const rows = await db.select().from(activity).where(and(gt(activity.id, last), ...filters())).orderBy(activity.id).limit(1000);
      rows.forEach(print);
      if (rows.length) last = rows.at(-1)!.id;
      if (rows.length === 1000) continue;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(2000, Math.max(0, deadline - Date.now())));
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    await listener.unlisten();
  } finally {
    await close();
  }
}
