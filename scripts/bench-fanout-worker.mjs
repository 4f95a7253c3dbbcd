// The fan-out worker as `nurture worker` runs it, for bench-fanout.ts: the compiled build in dist/ (what
// bin/nurture.js runs after `npm install` or `npm run build`; no tsx), in a process of its own, taking only
// fan-out jobs from the queue. Plain JavaScript, so plain node runs it. bench-fanout.ts forks it with
// BENCH_DATABASE_URL, BENCH_REDIS_URL, BENCH_PREFIX and BENCH_SEQUENCE, waits for `ready`, says `go`, and
// gets back the fan-out's time from start to its last page and the process's peak RSS as the kernel kept
// it (VmHWM in /proc/self/status), which counts everything the process held, not only the JS heap, and
// the CPU time the process used meanwhile.
import { readFileSync } from 'node:fs';

const dist = new URL('../dist/', import.meta.url);
const { closeContext, createContext } = await import(new URL('src/app.js', dist).href);
const { makeSettings } = await import(new URL('src/config/env.js', dist).href);
const { startFanOut } = await import(new URL('src/usecases/fanOutSegment.js', dist).href);
const { fanoutWorker } = await import(new URL('workers/fanout.js', dist).href);

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`bench-fanout-worker: ${name} is not set (bench-fanout.ts sets it)`);
  return v;
};
const root = new URL('..', import.meta.url).pathname;
const ctx = await createContext({
  databaseUrl: env('BENCH_DATABASE_URL'),
  redisUrl: env('BENCH_REDIS_URL'),
  smtpUrl: null,
  configDir: `${root}config`,
  templatesDir: `${root}templates`,
  queuePrefix: env('BENCH_PREFIX'),
  settings: makeSettings({ webhookSecret: 'whsec_bench', trackingSecret: 'bench', messageIdDomain: 'bench.test' }),
});
// As bench-fanout.ts does for its own context: no window, no caps.
ctx.config.funnel.caps = {};
delete ctx.config.funnel.defaults.window;

const kb = (field) => Number(/(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith(field)) ?? '')?.[1] ?? NaN);
let peakHeap = 0;
const probe = setInterval(() => (peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)), 10);
globalThis.gc?.();
const start = process.memoryUsage();
process.send({ type: 'ready', startRssMb: start.rss / 2 ** 20, startHeapMb: start.heapUsed / 2 ** 20 });

process.once('message', async () => {
  const worker = fanoutWorker(ctx);
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const { fanoutId } = await startFanOut(ctx, env('BENCH_SEQUENCE'), 'cli');
  let enrolled = 0;
  const finished = new Promise((resolve, reject) => {
    worker.on('completed', (job, r) => {
      if (job.data.fanoutId !== fanoutId) return;
      enrolled += r.enrolled;
      if (r.status !== 'running') resolve();
    });
    worker.on('failed', (_job, err) => reject(err));
  });
  await finished;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(probe);
  process.send({ type: 'done', seconds, enrolled, cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssMb: kb('VmHWM') / 1024, peakHeapMb: peakHeap / 2 ** 20 });
  await worker.close();
  await closeContext(ctx);
  process.disconnect();
});
