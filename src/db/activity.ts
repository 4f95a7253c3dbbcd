// Every write to the activity log (what `nurture logs` and the console follow), and its reads.
import { and, desc, eq, gt, inArray, lt, or, sql, type SQL } from 'drizzle-orm';
import type postgres from 'postgres';
import type { Tx } from './client.js';
import { accounts, activity, leads } from './schema.js';

export interface ActivityEntry {
  leadId?: string | null;
  accountId?: string | null;
  email?: string | null;
  accountName?: string | null;
  sequenceId?: string | null;
  stepId?: string | null;
  kind: string;
  detail: string;
  data?: Record<string, unknown>;
  at?: Date;
}

export const ACTIVITY_CHANNEL = 'nurture_activity';

/**
 * Any number of entries in one insert (a fan-out page logs a thousand): the entries travel as one JSON
 * parameter, unpacked by json_to_recordset, where a VALUES list through the query builder cost more CPU
 * than the rest of a page. A key left out is a null column; `at` defaults to now and `data` to {}.
 */
export async function logActivity(tx: Tx, entries: ActivityEntry[]): Promise<void> {
  if (!entries.length) return;
  await tx.execute(sql`
    insert into activity (at, lead_id, account_id, email, account_name, sequence_id, step_id, kind, detail, data)
    select coalesce(x.at, now()), x."leadId", x."accountId", x.email, x."accountName", x."sequenceId", x."stepId", x.kind, x.detail, coalesce(x.data, '{}')
    from json_to_recordset(${JSON.stringify(entries)}::json)
      as x(at timestamptz, "leadId" uuid, "accountId" uuid, email text, "accountName" text, "sequenceId" text, "stepId" text, kind text, detail text, data jsonb)`);
  // Wakes `nurture logs --follow` at once; delivered only when the transaction commits.
  await tx.execute(sql`select pg_notify(${ACTIVITY_CHANNEL}, '')`);
}

/**
 * Entries about something that may arrive again (a provider's event redelivered, an inbound mail read
 * twice or through two paths), each written once: its `receipt` (a key naming that thing) is claimed in
 * webhook_receipts in the same transaction as its line, so a second arrival (or two racing) finds it
 * taken and logs nothing. Returns how many were written.
 */
export async function logActivityOnce(db: Tx, entries: (ActivityEntry & { receipt: string })[]): Promise<number> {
  if (!entries.length) return 0;
  let logged = 0;
  // The claims travel as one JSON parameter (jsonb_to_recordset), not two parameters an entry through drizzle's VALUES.
  // In id order, so two calls claiming some of the same receipts wait for each other instead of deadlocking.
  const claims = [...new Map(entries.map((e) => [e.receipt, { id: e.receipt, response: { logged: e.kind } }])).values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  await db.transaction(async (tx) => {
    const claimed = await tx.execute<{ id: string }>(sql`
      insert into webhook_receipts (id, response)
      select x.id, x.response from jsonb_to_recordset(${JSON.stringify(claims)}::jsonb) as x(id text, response jsonb)
      on conflict do nothing
      returning id`);
    const fresh = new Set(claimed.map((c) => c.id));
    const lines = entries.filter((e) => fresh.delete(e.receipt)).map(({ receipt: _r, ...entry }) => entry);
    logged = lines.length;
    await logActivity(tx, lines);
  });
  return logged;
}

export type ActivityRow = typeof activity.$inferSelect;

/** Which events: every field given must match. `account` is an account's key or domain. */
export interface ActivityFilter {
  lead?: string;
  account?: string;
  sequence?: string;
  step?: string;
  kinds?: string[];
}

export function activityWhere(f: ActivityFilter): SQL[] {
  return [
    ...(f.lead ? [eq(activity.email, f.lead)] : []),
    ...(f.account ? [sql`${activity.accountId} in (select ${accounts.id} from ${accounts} where ${accounts.key} = ${f.account} or ${accounts.domain} = ${f.account})`] : []),
    ...(f.sequence ? [eq(activity.sequenceId, f.sequence)] : []),
    ...(f.step ? [eq(activity.stepId, f.step)] : []),
    ...(f.kinds?.length ? [inArray(activity.kind, f.kinds)] : []),
  ];
}

/** An activity row with the zone of its lead (else its account's), for showing times as the lead reads them. */
export type ActivityWithZone = ActivityRow & { zone: string | null };

const withZone = { ...activityColumns(), zone: sql<string | null>`coalesce(${leads.timeZone}, ${accounts.timeZone})` };

function activityColumns() {
  const { id, at, leadId, accountId, email, accountName, sequenceId, stepId, kind, detail, data } = activity;
  return { id, at, leadId, accountId, email, accountName, sequenceId, stepId, kind, detail, data };
}

/** A page by key: after an id (oldest first), before one (newest first), or the newest (newest first). */
export async function selectActivity(db: Tx, f: ActivityFilter, page: { after?: number; before?: number; upTo?: number; limit: number }): Promise<ActivityWithZone[]> {
  const ascending = page.after !== undefined;
  return db
    .select(withZone)
    .from(activity)
    .leftJoin(leads, eq(leads.id, activity.leadId))
    .leftJoin(accounts, eq(accounts.id, sql`coalesce(${activity.accountId}, ${leads.accountId})`))
    .where(
      and(
        ...activityWhere(f),
        ...(page.after !== undefined ? [gt(activity.id, page.after)] : []),
        ...(page.before !== undefined ? [lt(activity.id, page.before)] : []),
        ...(page.upTo !== undefined ? [sql`${activity.id} <= ${page.upTo}`] : []),
      ),
    )
    .orderBy(ascending ? activity.id : desc(activity.id))
    .limit(page.limit);
}

/** Every row past `high` or inside one of the open ranges, whatever the filter: following must learn which ids exist. */
export async function selectActivitySince(db: Tx, high: number, open: { from: number; to: number }[], limit: number): Promise<ActivityWithZone[]> {
  return db
    .select(withZone)
    .from(activity)
    .leftJoin(leads, eq(leads.id, activity.leadId))
    .leftJoin(accounts, eq(accounts.id, sql`coalesce(${activity.accountId}, ${leads.accountId})`))
    .where(or(gt(activity.id, high), ...open.map((g) => sql`${activity.id} between ${g.from} and ${g.to}`)))
    .orderBy(activity.id)
    .limit(limit);
}

/** The newest ids, oldest first: where following starts. */
export async function latestActivityIds(db: Tx, limit: number): Promise<number[]> {
  return (await db.select({ id: activity.id }).from(activity).orderBy(desc(activity.id)).limit(limit)).map((r) => r.id).reverse();
}

/** The accounts a filter's `account` names (by key or domain): to match followed rows in memory. */
export async function accountIdsNamed(db: Tx, keyOrDomain: string): Promise<string[]> {
  return (await db.select({ id: accounts.id }).from(accounts).where(or(eq(accounts.key, keyOrDomain), eq(accounts.domain, keyOrDomain)))).map((r) => r.id);
}

/** Wakes `onNotify` whenever an activity transaction commits, on the pool's own LISTEN connection. */
export async function listenActivity(sqlClient: postgres.Sql, onNotify: () => void): Promise<{ close(): Promise<void> }> {
  const sub = await sqlClient.listen(ACTIVITY_CHANNEL, () => onNotify());
  return { close: () => sub.unlisten().catch(() => {}) };
}
