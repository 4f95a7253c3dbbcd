import path from 'node:path';
import { startMailCatcher } from './mailcatcher.js';
import { startEmbeddedPostgres } from './postgres.js';
import { startEmbeddedRedis } from './redis.js';

export { DevServiceError, type DevServiceErrorCode } from './errors.js';
export { freePort } from './ports.js';
export { startEmbeddedPostgres, type EmbeddedPostgres, type EmbeddedPostgresOptions } from './postgres.js';
export { startEmbeddedRedis, type EmbeddedRedis } from './redis.js';
export { startMailCatcher, type CaughtMessage, type MailCatcher, type MailCatcherOptions } from './mailcatcher.js';

export type EmbeddedServiceName = 'postgres' | 'redis' | 'mail';

export interface StartedService {
  name: EmbeddedServiceName;
  url: string;
  /** Where its data lives, to show the user. */
  dir: string;
  webUrl?: string;
}

export interface EmbeddedDefaults {
  databaseUrl: string;
  redisUrl: string;
  smtpUrl: string;
  /** Set only when the mail catcher was started. */
  mailWebUrl?: string;
  mailDir?: string;
  /** What was started here (services given by env are not listed), in start order. */
  started: StartedService[];
  /** Stops what was started, in reverse order. */
  stop(): Promise<void>;
}

interface Running extends StartedService {
  stop(): Promise<void>;
}

/**
 * For each of DATABASE_URL, REDIS_URL and SMTP_URL: use it when `env` sets it, else start the embedded
 * service with its data under `dataDir`. All three start at once; when one fails, the others are stopped.
 */
export async function startEmbeddedDefaults(options: {
  dataDir: string;
  env: Record<string, string | undefined>;
}): Promise<EmbeddedDefaults> {
  const dataDir = path.resolve(options.dataDir);
  const given = (name: string) => options.env[name]?.trim() || undefined;

  const starts: Array<Promise<Running>> = [];
  if (!given('DATABASE_URL')) {
    starts.push(
      startEmbeddedPostgres({ dataDir }).then((pg) => ({ ...pg, name: 'postgres', dir: path.join(dataDir, 'postgres') })),
    );
  }
  if (!given('REDIS_URL')) {
    starts.push(
      startEmbeddedRedis({ dataDir }).then((redis) => ({ ...redis, name: 'redis', dir: path.join(dataDir, 'redis') })),
    );
  }
  if (!given('SMTP_URL')) {
    starts.push(
      startMailCatcher({ dir: path.join(dataDir, 'mail') }).then((mail) => ({ ...mail, name: 'mail' })),
    );
  }

  const results = await Promise.allSettled(starts);
  const running = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const stop = async () => {
    for (const service of [...running].reverse()) await service.stop();
  };
  const failures = results.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
  if (failures.length > 0) {
    await stop();
    if (failures.length === 1) throw failures[0];
    throw new AggregateError(failures, failures.map((failure) => (failure as Error).message).join('\n\n'));
  }

  const find = (name: EmbeddedServiceName) => running.find((service) => service.name === name);
  const mail = find('mail');
  return {
    databaseUrl: given('DATABASE_URL') ?? find('postgres')!.url,
    redisUrl: given('REDIS_URL') ?? find('redis')!.url,
    smtpUrl: given('SMTP_URL') ?? mail!.url,
    ...(mail ? { mailWebUrl: mail.webUrl, mailDir: mail.dir } : {}),
    started: running.map(({ name, url, dir, webUrl }) => ({ name, url, dir, ...(webUrl ? { webUrl } : {}) })),
    stop,
  };
}
