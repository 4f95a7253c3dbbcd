// Raw rows decoded as drizzle's select would decode them, for hot reads whose query the builder would
// otherwise rebuild and whose rows it would map through per-cell iterators (a fan-out page's leads, the
// send path's message with its lead, account and suppression). The values come from the same client, so
// each column's own decoder (mapFromDriverValue) sees what it sees under drizzle.
import { getTableColumns, sql, type SQL, type Table } from 'drizzle-orm';

type Decoder<T extends Table> = (raw: Record<string, unknown>) => T['$inferSelect'];

function decoderOf<T extends Table>(table: T, nameOf: (column: string) => string): Decoder<T> {
  const columns = Object.entries(getTableColumns(table)).map(([key, column]) => ({ key, name: nameOf(column.name), column }));
  return (raw) => {
    const row: Record<string, unknown> = {};
    for (const { key, name, column } of columns) {
      const v = raw[name];
      row[key] = v === null || v === undefined ? null : column.mapFromDriverValue(v);
    }
    return row as T['$inferSelect'];
  };
}

/** Decodes a raw row of `table` (as `select table.*` returns it) into what drizzle's select would give. */
export const rowDecoder = <T extends Table>(table: T): Decoder<T> => decoderOf(table, (name) => name);

/**
 * `table`'s columns under the alias `as` for a join's select list, each named `as.column` so that joined
 * tables' columns (every table's `id`) stay apart, with the decoder that reads them back from a row.
 */
export function aliasedColumns<T extends Table>(table: T, as: string): { list: SQL; decode: Decoder<T> } {
  const names = Object.values(getTableColumns(table)).map((c) => c.name);
  const list = sql.raw(names.map((n) => `${as}."${n}" as "${as}.${n}"`).join(', '));
  return { list, decode: decoderOf(table, (name) => `${as}.${name}`) };
}
