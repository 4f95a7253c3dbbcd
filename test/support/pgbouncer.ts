// A real PgBouncer for a test file: Debian's pgbouncer, started in the foreground on a free loopback port
// with a throwaway ini in a temporary folder, in transaction pool mode with fewer server connections than
// a nurture process's pool, so client connections really do share (and swap) server connections. As
// root, PgBouncer refuses to run unless told whom to run as: the `postgres` user (else `nobody`).
// `.ci/run` installs pgbouncer where it is missing.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answersOnPort, freePort } from '../../src/dev/ports.js';

export const PGBOUNCER_BINARY = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer'].find((p) => existsSync(p)) ?? null;
export const PGBOUNCER_INSTALL_HINT = 'apt-get install pgbouncer; .ci/run does it';

export interface PgBouncerOptions {
  /** Server connections per database and user: kept below the client pools so they must share. */
  poolSize?: number;
}

export interface PgBouncer {
  port: number;
  /** The URL of `dbName` through PgBouncer (same user as the direct URL; PgBouncer asks no password). */
  url(dbName: string): string;
  close(): Promise<void>;
}

function idOf(name: string): { uid: number; gid: number } | null {
  const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) return null;
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** Starts PgBouncer in front of the Postgres server `directUrl` points at (any database on it). */
export async function startPgBouncer(directUrl: string, opts: PgBouncerOptions = {}): Promise<PgBouncer> {
  if (!PGBOUNCER_BINARY) throw new Error(`pgbouncer is not installed: ${PGBOUNCER_INSTALL_HINT}`);
  const direct = new URL(directUrl);
  const poolSize = opts.poolSize ?? 3;
  const dir = mkdtempSync(join(tmpdir(), 'nurture-pgbouncer-'));
  const root = process.getuid?.() === 0;
  const runAs = root ? (['postgres', 'nobody'].find((u) => idOf(u)) ?? null) : null;
  if (root && !runAs) throw new Error('running as root, pgbouncer needs an unprivileged user to run as (postgres or nobody)');
  const port = await freePort();
  // Clients are let in without a password (auth_type = any); PgBouncer logs in to Postgres as the direct
  // URL's user, with its password if it has one.
  const server = [
    `host=${direct.hostname.replace(/^\[|\]$/g, '')}`,
    `port=${direct.port || 5432}`,
    `user=${decodeURIComponent(direct.username || 'postgres')}`,
    ...(direct.password ? [`password=${decodeURIComponent(direct.password)}`] : []),
  ].join(' ');
  const ini = join(dir, 'pgbouncer.ini');
  const logfile = join(dir, 'pgbouncer.log');
  writeFileSync(
    ini,
    `;; throwaway test configuration
[databases]
* = ${server}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = ${poolSize}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 500
;; postgres.js sends neither, but other clients' start-up parameters shouldn't stop a test
ignore_startup_parameters = extra_float_digits,options
logfile = ${logfile}
log_connections = 0
log_disconnections = 0
`,
    { mode: 0o644 },
  );
  writeFileSync(logfile, '', { mode: 0o644 });
  if (root) {
    const who = idOf(runAs!)!;
    chmodSync(dir, 0o755);
    chownSync(logfile, who.uid, who.gid);
  }
  const child: ChildProcess = spawn(PGBOUNCER_BINARY, [...(runAs ? ['-u', runAs] : []), ini], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const log = () => {
    try {
      return readFileSync(logfile, 'utf8');
    } catch {
      return '';
    }
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    const gone = child.exitCode !== null || child.signalCode !== null;
    if (gone || Date.now() > deadline) {
      const why = `${gone ? 'pgbouncer exited' : `pgbouncer did not listen on ${port} in time`}: ${output}\n${log()}`;
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(why);
    }
    if (await answersOnPort(port)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    url: (dbName) => {
      const u = new URL(directUrl);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      u.password = '';
      u.pathname = `/${dbName}`;
      return u.toString();
    },
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        // Clients have gone by now; a PgBouncer that still waits for one (newer ones do on SIGTERM) is killed.
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
