// What every long-running command shares: settings from the environment, services (embedded when
// asked), the context, and a graceful stop on SIGTERM/SIGINT.
import { resolve } from 'node:path';
import { closeContext, createContext, devSecrets } from '../app.js';
import { databaseUrlWith, readEnv, type Env, type Settings } from '../config/env.js';
import type { Context } from '../context.js';
import { startEmbeddedDefaults, type EmbeddedDefaults } from '../dev/index.js';
import { whenLauncherExits } from './launcher.js';
import { readRuntimeFile } from './runtimeFile.js';
import { relayProviderOfUrl } from '../engagement/providers/relay.js';
import { forceClose } from '../mail/transport.js';

export interface Runtime {
  env: Env;
  ctx: Context;
  embedded: EmbeddedDefaults | null;
  stop(): Promise<void>;
  /**
   * Drops the SMTP connections still delivering (a hung relay): each of those sends fails at once, and
   * records what it knows (uncertain once DATA began) instead of holding the stop up.
   */
  force(): void;
}

export async function startRuntime(opts: { embedded: boolean; sends: boolean }): Promise<Runtime> {
  const env = readEnv();
  const dataDir = resolve(env.NURTURE_DATA_DIR);
  const embedded = opts.embedded ? await startEmbeddedDefaults({ dataDir, env: process.env }) : null;
  // A one-off command (enroll, fanout) finds a running `nurture start`'s embedded services too.
  const running = opts.embedded ? null : readRuntimeFile(dataDir);
  const given = embedded?.databaseUrl ?? env.DATABASE_URL ?? running?.databaseUrl;
  const databaseUrl = given && databaseUrlWith(given, { prepare: env.DB_PREPARE });
  const redisUrl = embedded?.redisUrl ?? env.REDIS_URL ?? running?.redisUrl;
  const smtpUrl = embedded?.smtpUrl ?? env.SMTP_URL;
  const missing = [!databaseUrl && 'DATABASE_URL', !redisUrl && 'REDIS_URL', opts.sends && !smtpUrl && 'SMTP_URL'].filter(Boolean);
  if (missing.length) throw new Error(`set ${missing.join(', ')} (or run \`nurture start\`, which starts embedded services for what is unset)`);
  const ctx = await createContext({
    databaseUrl: databaseUrl!,
    redisUrl: redisUrl!,
    // REDIS_CLUSTER speaks of REDIS_URL only: an embedded or `nurture start`'s Redis is read as its URL says.
    redisCluster: env.REDIS_URL ? env.REDIS_CLUSTER : undefined,
    smtpUrl: opts.sends ? smtpUrl! : null,
    configDir: env.NURTURE_CONFIG_DIR,
    templatesDir: env.NURTURE_TEMPLATES_DIR,
    queuePrefix: env.QUEUE_PREFIX,
    settings: settingsFrom(env, dataDir),
    dbPoolSize: env.DB_POOL_SIZE,
    smtpPoolSize: env.SMTP_POOL_SIZE,
  }).catch(async (err) => {
    await embedded?.stop();
    throw err;
  });
  return {
    env,
    ctx,
    embedded,
    stop: async () => {
      await closeContext(ctx);
      await embedded?.stop();
    },
    force: () => {
      if (ctx.transport) forceClose(ctx.transport);
    },
  };
}

export function settingsFrom(env: Env, dataDir: string): Settings {
  const dev = env.WEBHOOK_SECRET && env.TRACKING_SECRET ? null : devSecrets(dataDir);
  const publicUrl = env.PUBLIC_URL ?? `http://${env.HOST}:${env.PORT}`;
  return {
    publicUrl,
    webhookSecret: env.WEBHOOK_SECRET ?? dev!.webhookSecret,
    outboundSecret: env.OUTBOUND_WEBHOOK_SECRET ?? env.WEBHOOK_SECRET ?? dev!.webhookSecret,
    trackingSecret: env.TRACKING_SECRET ?? dev!.trackingSecret,
    // Not PUBLIC_URL's host: on a default start that is 127.0.0.1, and a Message-ID never names an IP.
    messageIdDomain: env.MESSAGE_ID_DOMAIN ?? null,
    trustedProxies: env.TRUSTED_PROXIES.split(',').map((s) => s.trim()).filter(Boolean),
    sendingTimeoutSeconds: env.SENDING_TIMEOUT_SECONDS,
    reconcileEverySeconds: env.RECONCILE_EVERY_SECONDS,
    adminToken: env.ADMIN_TOKEN ?? null,
    providers: {
      sendgridPublicKey: env.SENDGRID_WEBHOOK_PUBLIC_KEY ?? null,
      postmarkUser: env.POSTMARK_WEBHOOK_USER ?? null,
      postmarkPassword: env.POSTMARK_WEBHOOK_PASSWORD ?? null,
      mailgunSigningKey: env.MAILGUN_SIGNING_KEY ?? null,
      sesTopicArns: env.SES_TOPIC_ARNS.split(',').map((t) => t.trim()).filter(Boolean),
      relay: env.SMTP_PROVIDER ? (env.SMTP_PROVIDER === 'none' ? null : env.SMTP_PROVIDER) : relayProviderOfUrl(env.SMTP_URL),
    },
  };
}

/**
 * Stops once on SIGTERM, SIGINT or SIGHUP (or when the npm that started it is gone): workers finish the jobs in hand, then connections close. Within
 * `drainSeconds` whatever happens: past it, `force` drops what is still open (an SMTP connection to a
 * hung relay, say) and the process exits 1, so an orchestrator's stop timeout never has to SIGKILL it.
 */
export function onShutdown(stop: () => Promise<void>, o: { drainSeconds: number; force?: () => void } = { drainSeconds: 30 }): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: finishing jobs in progress (up to ${o.drainSeconds} s), then stopping…`);
    setTimeout(() => {
      console.error(`${signal}: still not stopped after ${o.drainSeconds} s (DRAIN_TIMEOUT_SECONDS): exiting now; a send cut short stays \`sending\` and is reported uncertain, never resent on its own`);
      try {
        o.force?.();
      } finally {
        process.exit(1);
      }
    }, o.drainSeconds * 1000);
    stop()
      .then(() => {
        console.log(`${signal}: stopped`);
        process.exit(0);
      })
      .catch((err) => {
        console.error(err);
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('SIGHUP', () => {
    // A closed terminal: writing to it fails, which must not cut the stop short.
    for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
    handler('SIGHUP');
  });
  whenLauncherExits(() => handler('npm exited'));
}
