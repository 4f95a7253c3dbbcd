// `nurture start` (everything in one process, embedded services for whatever is unset),
// `nurture api` and `nurture worker` (the same parts apart, against configured services).
import { resolve } from 'node:path';
import { startWorkers } from '../../workers/index.js';
import { startHttp } from '../http/server.js';
import { QUEUE_NAMES } from '../queue/index.js';
import { isCluster } from '../queue/redis.js';
import { onShutdown, startRuntime } from './runtime.js';
import { removeRuntimeFile, writeRuntimeFile } from './runtimeFile.js';

export async function start(parts: { api: boolean; worker: boolean; embedded: boolean }): Promise<void> {
  const rt = await startRuntime({ embedded: parts.embedded, sends: parts.worker });
  const { env, ctx, embedded } = rt;
  // The workers stop waiting for their jobs a second before the hard deadline, so the rest of the stop still fits.
  const drainSeconds = Math.max(env.DRAIN_TIMEOUT_SECONDS - 1, env.DRAIN_TIMEOUT_SECONDS / 2);
  const workers = parts.worker ? await startWorkers(ctx, { concurrency: env.WORKER_CONCURRENCY, reconcileEverySeconds: env.RECONCILE_EVERY_SECONDS, drainSeconds }) : null;
  const http = parts.api ? await startHttp(ctx, { host: env.HOST, port: env.PORT }) : null;
  const dataDir = resolve(env.NURTURE_DATA_DIR);
  if (embedded) writeRuntimeFile(dataDir, { databaseUrl: embedded.databaseUrl, redisUrl: embedded.redisUrl, apiUrl: http?.url ?? null });
  onShutdown(
    async () => {
      if (embedded) removeRuntimeFile(dataDir);
      await http?.close();
      if ((await workers?.close()) === 'timeout') {
        // Jobs still in progress hold connections (a send to a hung relay): drop those, give their sends
        // a moment to record what they know, and stop without them.
        console.error(`drain timeout: jobs still in progress after ${drainSeconds} s; closing the SMTP connections they hold`);
        rt.force();
        await workers?.close(0.5);
      }
      await rt.stop();
    },
    { drainSeconds: env.DRAIN_TIMEOUT_SECONDS, force: () => rt.force() },
  );

  const lines = ['nurture is running'];
  if (http) lines.push(`  API            ${http.url}  (POST /v1/triggers, /v1/inbound; tracking under /t, unsubscribe under /u)`);
  // One worker per queue (workers/index.ts), so the list is the queues'.
  if (workers) lines.push(`  workers        ${QUEUE_NAMES.join(', ')} (concurrency ${env.WORKER_CONCURRENCY})`);
  lines.push(`  sequences      ${[...ctx.config.sequences.keys()].join(', ')}  (from ${resolve(env.NURTURE_CONFIG_DIR)})`);
  if (isCluster(ctx.queues.settings.connection)) lines.push(`  redis          a Redis Cluster (from REDIS_URL); queue keys under ${ctx.queues.settings.prefix}`);
  for (const s of embedded?.started ?? []) {
    lines.push(`  ${s.name.padEnd(14)} ${redact(s.url)}  (embedded; data in ${s.dir})`);
    if (s.webUrl) lines.push(`  caught mail    ${s.webUrl}`);
  }
  if (!process.env.WEBHOOK_SECRET) lines.push(`  webhook secret in ${resolve(env.NURTURE_DATA_DIR, 'secrets.json')} (set WEBHOOK_SECRET in production)`);
  lines.push('  follow along   npx nurture logs -f');
  console.log(lines.join('\n'));
}

const redact = (url: string) => url.replace(/\/\/([^:/@]+):[^@]+@/, '//$1:***@');
