// What every long-running command shares: settings from the environment, services (embedded when
// asked), the context, and a graceful stop on SIGTERM/SIGINT.
import { resolve } from 'node:path';
import { closeContext, createContext, devSecrets } from '../app.js';
import { readEnv, type Env, type Settings } from '../config/env.js';
import type { Context } from '../context.js';
import { startEmbeddedDefaults, type EmbeddedDefaults } from '../dev/index.js';
import { readRuntimeFile } from './runtimeFile.js';
import { relayProviderOfUrl } from '../engagement/providers/relay.js';

export interface Runtime {
  env: Env;
  ctx: Context;
  embedded: EmbeddedDefaults | null;
  stop(): Promise<void>;
}

export async function startRuntime(opts: { embedded: boolean; sends: boolean }): Promise<Runtime> {
  const env = readEnv();
  const dataDir = resolve(env.NURTURE_DATA_DIR);
  const embedded = opts.embedded ? await startEmbeddedDefaults({ dataDir, env: process.env }) : null;
  // A one-off command (enroll, fanout) finds a running `nurture start`'s embedded services too.
  const running = opts.embedded ? null : readRuntimeFile(dataDir);
  const databaseUrl = embedded?.databaseUrl ?? env.DATABASE_URL ?? running?.databaseUrl;
  const redisUrl = embedded?.redisUrl ?? env.REDIS_URL ?? running?.redisUrl;
  const smtpUrl = embedded?.smtpUrl ?? env.SMTP_URL;
  const missing = [!databaseUrl && 'DATABASE_URL', !redisUrl && 'REDIS_URL', opts.sends && !smtpUrl && 'SMTP_URL'].filter(Boolean);
  if (missing.length) throw new Error(`set ${missing.join(', ')} (or run \`nurture start\`, which starts embedded services for what is unset)`);
  const ctx = await createContext({
    databaseUrl: databaseUrl!,
    redisUrl: redisUrl!,
    smtpUrl: opts.sends ? smtpUrl! : null,
    configDir: env.NURTURE_CONFIG_DIR,
    templatesDir: env.NURTURE_TEMPLATES_DIR,
    queuePrefix: env.QUEUE_PREFIX,
    settings: settingsFrom(env, dataDir),
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
    messageIdDomain: env.MESSAGE_ID_DOMAIN ?? new URL(publicUrl).hostname,
    trustedProxies: env.TRUSTED_PROXIES.split(',').map((s) => s.trim()).filter(Boolean),
    sendingTimeoutSeconds: env.SENDING_TIMEOUT_SECONDS,
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

/** Stops once on SIGTERM or SIGINT: workers finish the jobs in hand, then connections close. */
export function onShutdown(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: finishing jobs in progress, then stopping…`);
    stop()
      .then(() => process.exit(0))
      .catch((err) => {
        console.error(err);
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
}
