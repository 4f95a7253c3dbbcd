// Everything a use case needs, built once per process (or per test) and passed in: no module singletons.
import type { Transporter } from 'nodemailer';
import type { Config } from './config/load.js';
import type { Settings } from './config/env.js';
import type { Database, Db } from './db/client.js';
import type { Queues } from './queue/index.js';
import type { TemplateCache } from './render/index.js';
import type { ProcessMetrics } from './metrics.js';
import type { MailboxTransports } from './mailbox/smtp.js';

export interface Context {
  db: Db;
  database: Database;
  config: Config;
  queues: Queues;
  /** Only processes that send mail have one. */
  transport: Transporter | null;
  /** The reps' own mailboxes' SMTP transports (config/mailboxes.yaml), made on first use; only where mail is sent. */
  mailboxTransports?: MailboxTransports | null;
  templates: TemplateCache;
  settings: Settings;
  now(): Date;
  /** What this process observes as it works (render and SMTP latency), served at GET /metrics. */
  metrics?: ProcessMetrics;
}
