// Environment settings: one schema, read once at start-up; a bad value stops the process with its name.
import { z } from 'zod';

/** 1/0, true/false, yes/no, on/off. */
const flag = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'], { error: 'expected 1 or 0 (true/false, yes/no, on/off)' })
  .transform((v) => ['1', 'true', 'yes', 'on'].includes(v));

export const EnvSchema = z.object({
  DATABASE_URL: z.string().optional(),
  /**
   * One Redis server (`redis://host:6379`), or a Redis Cluster's nodes, comma-separated
   * (`redis://h1:7000,h2:7001,h3:7002`; later nodes may be bare host:port). See REDIS_CLUSTER.
   */
  REDIS_URL: z.string().optional(),
  /**
   * Whether REDIS_URL is a Redis Cluster. Unset: a list of several nodes is one, a single URL is not; 1
   * with a single URL treats it as one seed node of a Cluster (the client finds the others).
   */
  REDIS_CLUSTER: flag.optional(),
  SMTP_URL: z.string().optional(),
  /**
   * The email service provider behind SMTP_URL, when its host doesn't say (a local smarthost that relays
   * to it): sendgrid | postmark | mailgun | ses, or none. Decides the custom-argument header set on each
   * message and how the relay's reply names the provider's message id.
   */
  SMTP_PROVIDER: z.enum(['sendgrid', 'postmark', 'mailgun', 'ses', 'none']).optional(),
  NURTURE_CONFIG_DIR: z.string().default('config'),
  NURTURE_TEMPLATES_DIR: z.string().default('templates'),
  NURTURE_DATA_DIR: z.string().default('.nurture'),
  HOST: z.string().default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8787),
  /** The address people's mail clients reach tracking, click and unsubscribe links at. */
  PUBLIC_URL: z.string().url().optional(),
  /** Standard Webhooks secret for incoming triggers (whsec_… base64). */
  WEBHOOK_SECRET: z.string().min(16).optional(),
  /** Signs webhooks nurture sends to your CRM (defaults to WEBHOOK_SECRET). */
  OUTBOUND_WEBHOOK_SECRET: z.string().min(16).optional(),
  /** Signs tracking and unsubscribe links. */
  TRACKING_SECRET: z.string().min(16).optional(),
  /** The right-hand side of Message-IDs; unset, each message's From domain (see messageIdDomain in mail/message.ts). */
  MESSAGE_ID_DOMAIN: z
    .string()
    .regex(/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z][a-z0-9-]{0,62}$/i, 'expected a domain name such as mail.handrail.example, not an IP address')
    .optional(),
  /** Bearer token for operator pages (template previews) when reached from another machine. */
  ADMIN_TOKEN: z.string().min(16).optional(),
  /** Email service providers' webhooks (each is refused until configured). */
  SENDGRID_WEBHOOK_PUBLIC_KEY: z.string().optional(),
  POSTMARK_WEBHOOK_USER: z.string().optional(),
  POSTMARK_WEBHOOK_PASSWORD: z.string().optional(),
  MAILGUN_SIGNING_KEY: z.string().optional(),
  /** Comma-separated SNS topic ARNs your SES events and inbound mail are published to. */
  SES_TOPIC_ARNS: z.string().default(''),
  /** Comma-separated proxy addresses whose X-Forwarded-For is believed. */
  TRUSTED_PROXIES: z.string().default(''),
  QUEUE_PREFIX: z.string().default('nurture'),
  WORKER_CONCURRENCY: z.coerce.number().int().positive().default(10),
  /**
   * Pooled SMTP connections per process (one transaction each at a time). A send holds one only for its
   * SMTP transaction; raise it toward WORKER_CONCURRENCY when the relay is far away (latency, not CPU, bounds it).
   */
  SMTP_POOL_SIZE: z.coerce.number().int().positive().default(5),
  /**
   * Postgres connections per process. Budget: processes × DB_POOL_SIZE (plus the API's) must stay under the
   * server's max_connections; a worker rarely needs more than WORKER_CONCURRENCY.
   */
  DB_POOL_SIZE: z.coerce.number().int().positive().default(10),
  /**
   * Named (server-side prepared) statements. Set false behind PgBouncer in transaction mode (or any pooler
   * that hands each transaction to another server connection), where a statement prepared on one
   * connection is missing on the next.
   */
  DB_PREPARE: flag.default(true),
  RECONCILE_EVERY_SECONDS: z.coerce.number().int().positive().default(60),
  /** A message still `sending` this long after it started is reported `uncertain`, never retried on its own. */
  SENDING_TIMEOUT_SECONDS: z.coerce.number().int().positive().default(300),
  /**
   * On SIGTERM/SIGINT, how long jobs in progress may take to finish before the process exits anyway (an
   * orchestrator's stop timeout should be longer). A send cut short stays `sending` and is reported
   * `uncertain` after SENDING_TIMEOUT_SECONDS, never resent on its own.
   */
  DRAIN_TIMEOUT_SECONDS: z.coerce.number().positive().default(30),
});
export type Env = z.infer<typeof EnvSchema>;

export function readEnv(env: NodeJS.ProcessEnv = process.env): Env {
  const r = EnvSchema.safeParse(env);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid environment:\n${lines.join('\n')}`);
  }
  return r.data;
}

/**
 * DATABASE_URL with DB_PREPARE applied: `prepare=false` turns postgres.js's named (server-side prepared)
 * statements off, which PgBouncer in transaction mode needs. In the URL, so every command's pool gets it.
 */
export function databaseUrlWith(url: string, o: { prepare: boolean }): string {
  if (o.prepare || /[?&]prepare=/.test(url)) return url;
  return `${url}${url.includes('?') ? '&' : '?'}prepare=false`;
}

export interface ProviderSettings {
  sendgridPublicKey: string | null;
  postmarkUser: string | null;
  postmarkPassword: string | null;
  mailgunSigningKey: string | null;
  sesTopicArns: string[];
  /** SNS signing certificates, fetched from a trusted SNS URL once and kept. */
  snsCertificate?: (url: string) => Promise<string>;
  /** How a SubscriptionConfirmation's (checked, Amazon-hosted) SubscribeURL is fetched; global fetch by default. */
  snsFetch?: (url: string, init: { signal: AbortSignal }) => Promise<{ ok: boolean; status: number; text(): Promise<string> }>;
  /** The provider whose SMTP relay sends our mail (from SMTP_PROVIDER or SMTP_URL's host); null for any other relay. */
  relay?: 'sendgrid' | 'postmark' | 'mailgun' | 'ses' | null;
}

export interface Settings {
  publicUrl: string;
  webhookSecret: string;
  outboundSecret: string;
  trackingSecret: string;
  /** MESSAGE_ID_DOMAIN, or null: each Message-ID then names its From domain (never an IP literal). */
  messageIdDomain: string | null;
  trustedProxies: string[];
  adminToken: string | null;
  providers: ProviderSettings;
  sendingTimeoutSeconds: number;
  /** RECONCILE_EVERY_SECONDS: a step due further ahead than two of these waits in Postgres, not in Redis. */
  reconcileEverySeconds: number;
}

/** Settings with safe defaults for everything not given: for tests, benchmarks and scripts. */
export function makeSettings(given: Partial<Settings> & Pick<Settings, 'webhookSecret' | 'trackingSecret'>): Settings {
  return {
    publicUrl: 'http://127.0.0.1:8787',
    outboundSecret: given.webhookSecret,
    messageIdDomain: 'nurture.test',
    trustedProxies: [],
    sendingTimeoutSeconds: 300,
    reconcileEverySeconds: 60,
    adminToken: null,
    providers: { sendgridPublicKey: null, postmarkUser: null, postmarkPassword: null, mailgunSigningKey: null, sesTopicArns: [] },
    ...given,
  };
}
