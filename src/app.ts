// Builds a process's context from settings: configuration, database (migrated), queues, transport.
// The CLI, the tests and the benchmarks all build theirs here.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfig } from './config/load.js';
import type { Settings } from './config/env.js';
import type { Context } from './context.js';
import { connectDatabase, migrateDatabase, refuseLostPreparedStatements } from './db/client.js';
import { sequenceVersions } from './db/schema.js';
import { createTransport } from './mail/transport.js';
import { MailboxTransports } from './mailbox/smtp.js';
import { createQueues, redisConnection } from './queue/index.js';
import { TemplateCache } from './render/index.js';
import { ProcessMetrics } from './metrics.js';

export interface ContextOptions {
  databaseUrl: string;
  redisUrl: string;
  /** REDIS_CLUSTER: unset, a REDIS_URL listing several nodes is a Cluster. */
  redisCluster?: boolean;
  /** Null for processes that never send (the API alone). */
  smtpUrl: string | null;
  configDir: string;
  templatesDir: string;
  queuePrefix: string;
  settings: Settings;
  now?: () => Date;
  dbPoolSize?: number;
  /** Pooled SMTP connections (SMTP_POOL_SIZE). */
  smtpPoolSize?: number;
}

export async function createContext(o: ContextOptions): Promise<Context> {
  // Refuse to start on an invalid configuration: the ConfigError lists every problem with its position.
  const config = loadConfig(resolve(o.configDir), { templatesDir: resolve(o.templatesDir) });
  await migrateDatabase(o.databaseUrl);
  await refuseLostPreparedStatements(o.databaseUrl);
  const database = connectDatabase(o.databaseUrl, { max: o.dbPoolSize ?? 10 });
  // Every version a lead may be enrolled at stays known, so a live edit can be mapped step by step.
  const versions = [...config.sequences.values()].map((s) => ({ sequenceId: s.id, version: s.version, definition: { ...s } }));
  if (versions.length) await database.db.insert(sequenceVersions).values(versions).onConflictDoNothing();
  return {
    db: database.db,
    database,
    config,
    queues: createQueues({ connection: redisConnection(o.redisUrl, { cluster: o.redisCluster }), prefix: o.queuePrefix }),
    transport: o.smtpUrl ? createTransport(o.smtpUrl, { poolSize: o.smtpPoolSize }) : null,
    mailboxTransports: o.smtpUrl ? new MailboxTransports(config.mailboxes, config.dir) : null,
    templates: new TemplateCache(),
    settings: o.settings,
    now: o.now ?? (() => new Date()),
    metrics: new ProcessMetrics(),
  };
}

export async function closeContext(ctx: Context): Promise<void> {
  await ctx.queues.close();
  ctx.transport?.close();
  ctx.mailboxTransports?.close();
  await ctx.database.close();
}

/**
 * Secrets for a development install: generated once and kept in the data folder, so links in mail
 * already sent keep working across restarts. Production sets WEBHOOK_SECRET and TRACKING_SECRET.
 */
export function devSecrets(dataDir: string): { webhookSecret: string; trackingSecret: string } {
  const file = join(dataDir, 'secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as { webhookSecret: string; trackingSecret: string };
  mkdirSync(dataDir, { recursive: true });
  const secrets = { webhookSecret: `whsec_${randomBytes(24).toString('base64')}`, trackingSecret: randomBytes(24).toString('base64url') };
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}
