// `nurture start` (everything in one process, embedded services for whatever is unset),
// `nurture api` and `nurture worker` (the same parts apart, against configured services).
import { resolve } from 'node:path';
import { startWorkers } from '../../workers/index.js';
import { startHttp } from '../http/server.js';
import { onShutdown, startRuntime } from './runtime.js';
import { removeRuntimeFile, writeRuntimeFile } from './runtimeFile.js';

export async function start(parts: { api: boolean; worker: boolean; embedded: boolean }): Promise<void> {
  const rt = await startRuntime({ embedded: parts.embedded, sends: parts.worker });
  const { env, ctx, embedded } = rt;
  const workers = parts.worker ? await startWorkers(ctx, { concurrency: env.WORKER_CONCURRENCY, reconcileEverySeconds: env.RECONCILE_EVERY_SECONDS }) : null;
  const http = parts.api ? await startHttp(ctx, { host: env.HOST, port: env.PORT }) : null;
  const dataDir = resolve(env.NURTURE_DATA_DIR);
  if (embedded) writeRuntimeFile(dataDir, { databaseUrl: embedded.databaseUrl, redisUrl: embedded.redisUrl, apiUrl: http?.url ?? null });
  onShutdown(async () => {
    if (embedded) removeRuntimeFile(dataDir);
    await http?.close();
    await workers?.close();
    await rt.stop();
  });

  const lines = ['nurture is running'];
  if (http) lines.push(`  API            ${http.url}  (POST /v1/triggers, /v1/inbound; tracking under /t, unsubscribe under /u)`);
  if (workers) lines.push(`  workers        step, send, fanout, maintenance (concurrency ${env.WORKER_CONCURRENCY})`);
  lines.push(`  sequences      ${[...ctx.config.sequences.keys()].join(', ')}  (from ${resolve(env.NURTURE_CONFIG_DIR)})`);
  for (const s of embedded?.started ?? []) {
    lines.push(`  ${s.name.padEnd(14)} ${redact(s.url)}  (embedded; data in ${s.dir})`);
    if (s.webUrl) lines.push(`  caught mail    ${s.webUrl}`);
  }
  if (!process.env.WEBHOOK_SECRET) lines.push(`  webhook secret in ${resolve(env.NURTURE_DATA_DIR, 'secrets.json')} (set WEBHOOK_SECRET in production)`);
  lines.push('  follow along   npx nurture logs -f');
  console.log(lines.join('\n'));
}

const redact = (url: string) => url.replace(/\/\/([^:/@]+):[^@]+@/, '//$1:***@');
