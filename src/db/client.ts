// One Postgres pool per process, passed around in the context (never a module-level singleton).
import { join } from 'node:path';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { packageRoot } from '../packageRoot.js';
import * as schema from './schema.js';

export type Db = PostgresJsDatabase<typeof schema>;
/** A transaction or the pool: queries take either, so use cases decide the transaction boundary. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0] | Db;

export interface Database {
  db: Db;
  sql: postgres.Sql;
  close(): Promise<void>;
}

const MIGRATIONS = join(packageRoot, 'drizzle');

export function connectDatabase(url: string, opts: { max?: number } = {}): Database {
  const sql = postgres(url, { max: opts.max ?? 10, onnotice: () => {}, connect_timeout: 10 });
  const db = drizzle(sql, { schema });
  return { db, sql, close: () => sql.end({ timeout: 5 }) };
}

/**
 * Applies drizzle's migrations (its journal table, the same bookkeeping as drizzle's migrator) in one
 * transaction under a transaction-scoped advisory lock, so several processes starting at once don't race
 * each other. One transaction, not a session lock around drizzle's migrator: behind PgBouncer in
 * transaction mode each statement outside a transaction may run on another server connection, and a
 * session lock taken on one would never be released by an unlock sent to the next.
 */
export async function migrateDatabase(url: string): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(7428112)`;
      await tx`create schema if not exists drizzle`;
      await tx`create table if not exists drizzle.__drizzle_migrations (id serial primary key, hash text not null, created_at bigint)`;
      const [last] = await tx<{ created_at: string }[]>`select created_at from drizzle.__drizzle_migrations order by created_at desc limit 1`;
      for (const m of readMigrationFiles({ migrationsFolder: MIGRATIONS })) {
        if (last && Number(last.created_at) >= m.folderMillis) continue;
        for (const statement of m.sql) if (statement.trim()) await tx.unsafe(statement);
        await tx`insert into drizzle.__drizzle_migrations (hash, created_at) values (${m.hash}, ${m.folderMillis})`;
      }
    });
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * Refuses a DATABASE_URL that goes through a pooler handing each transaction whichever server connection
 * is free (PgBouncer in transaction mode) while named prepared statements are on (DB_PREPARE): a statement
 * prepared in one transaction is then missing in the next, and the transaction fails, or, when the missing
 * one is postgres.js's own COMMIT, is rolled back with no error at all. Checked by doing exactly that: one
 * client runs a statement in a transaction, a second takes the server connection it freed (a pooler hands
 * out the most recently freed first), and the first runs its statement again in a new transaction. On
 * Postgres itself, in session pooling, or behind a pooler that keeps prepared statements (PgBouncer 1.21+
 * with max_prepared_statements), it runs. A pooler with no server connection to spare makes it wait for
 * the second client: that proves nothing, and passes.
 */
export async function refuseLostPreparedStatements(url: string): Promise<void> {
  if (/[?&]prepare=false(&|$)/.test(url)) return;
  const options = { max: 1, onnotice: () => {}, connect_timeout: 10 } as const;
  const [a, b] = [postgres(url, options), postgres(url, options)];
  let release = () => {};
  const released = new Promise<void>((r) => (release = r));
  let hold: Promise<unknown> = Promise.resolve();
  try {
    const probe = () => a.begin((tx) => tx`select ${1}::int as probe`);
    await probe();
    await new Promise<void>((holding, failed) => {
      hold = b.begin(async (tx) => {
        await tx`select 1`;
        holding();
        await released;
      });
      hold.catch(failed);
    });
    const again = probe().then(() => null, (err: unknown) => err);
    const waited = new Promise<'waited'>((r) => setTimeout(r, 2000, 'waited').unref());
    const outcome = await Promise.race([again, waited]);
    if (outcome === 'waited' || outcome === null) return;
    const code = (outcome as { code?: string }).code;
    // 26000: the prepared statement is missing; 25P02: the transaction aborted by it (postgres.js's retry).
    if (code !== '26000' && code !== '25P02') throw outcome;
    throw new Error(
      'DATABASE_URL reaches Postgres through a pooler that gives each transaction another server connection (PgBouncer in transaction mode?), ' +
        'where prepared statements are lost between transactions: set DB_PREPARE=0 (docs/scale.md). With them on, transactions there fail or are rolled back without an error.',
    );
  } finally {
    release();
    await hold.catch(() => {});
    await Promise.all([a.end({ timeout: 5 }), b.end({ timeout: 5 })]);
  }
}

/**
 * A database error as it may be logged: the SQL text, Postgres's code and the table, column or
 * constraint it names, but never the query's parameters or Postgres's detail line, which carry people's
 * data (emails, names, attributes: "Key (email)=(…) already exists"). Anything else is returned as is.
 */
export function loggableError(err: unknown): unknown {
  const e = err as { query?: unknown; cause?: unknown; stack?: string } | null;
  if (!e || typeof e !== 'object' || typeof e.query !== 'string' || !('params' in e)) return err;
  const pg = (e.cause ?? {}) as { code?: string; message?: string; table_name?: string; column_name?: string; constraint_name?: string };
  const names = [pg.table_name && `table ${pg.table_name}`, pg.column_name && `column ${pg.column_name}`, pg.constraint_name && `constraint ${pg.constraint_name}`].filter(Boolean);
  // Postgres quotes the offending value at the end of some messages (invalid input syntax for type uuid: "…").
  const message = (pg.message ?? 'query failed').replace(/: ".*"$/s, ': (value withheld)');
  const frames = (e.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l)).join('\n');
  return `database error${pg.code ? ` ${pg.code}` : ''}: ${message}${names.length ? ` (${names.join(', ')})` : ''}\n  query: ${e.query.slice(0, 2000)}${frames ? `\n${frames}` : ''}`;
}
