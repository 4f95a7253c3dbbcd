// Lists and times as SQL parameters for statements over many rows at once (a fan-out page, a batch of
// hits or provider events): one parameter for a whole list instead of one per value (drizzle builds and
// type-checks each), and each distinct instant converted to text once.
import { sql, type AnyColumn, type SQL } from 'drizzle-orm';

/**
 * ISO text for a batch's instants, each distinct one converted once: a batch's rows share a few (a page's
 * due time and its leads' import time, a batch's settle time), and a Date's toJSON took most of the time
 * of stringifying such rows.
 */
export function isoOnce(): (d: Date) => string {
  const seen = new Map<number, string>();
  return (d) => {
    const t = d.getTime();
    let text = seen.get(t);
    if (text === undefined) seen.set(t, (text = d.toISOString()));
    return text;
  };
}

/** `column in (ids)` with the ids as one parameter, not one each (a page's thousand). */
export const inIds = (column: AnyColumn, ids: string[]): SQL => sql`${column} in (select value::uuid from jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb))`;

/**
 * `column = any(values)` with the values as one array parameter, not one parameter each. Unlike inIds'
 * subquery, Postgres sees the values (a statement planned for its parameters takes the array as a
 * constant), so it plans and runs as the IN list did: its estimates, a hashed lookup where it scans, and an
 * `or` of several is one index scan each (an `or` of subqueries scans the whole table, even analyzed).
 */
export const anyUuid = (column: AnyColumn, ids: string[]): SQL => sql`${column} = any(${sql.param(ids)}::uuid[])`;
export const anyText = (column: AnyColumn, values: string[]): SQL => sql`${column} = any(${sql.param(values)}::text[])`;
