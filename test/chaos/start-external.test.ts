// `nurture start` with every service given (DATABASE_URL, REDIS_URL, SMTP_URL) and both secrets set, as
// a container runs it: nothing embedded starts and no dev secrets are written, so nothing else creates
// the data folder — it used to exit at once with ENOENT on runtime.json. Now it creates the folder, runs
// the API and the workers, takes a signed fan-out (a row in Postgres before the 200), sends it, and stops
// cleanly on SIGTERM.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { signedHeaders } from '../../src/http/signing.js';
import { insertLeads, owed, recordResult, SECRETS, settled, startScene, tally, traversableTempDir, troubleIn, waitForOrExplain, type Scene } from './support.js';

const LEADS = 50;

let s: Scene;
beforeAll(async () => {
  s = await startScene();
});
afterAll(async () => s?.close());

it('runs on external services with a data folder that does not exist yet', async () => {
  const leadIds = await insertLeads(s.ctx, LEADS, 'economic_buyer', 'external');
  const dataDir = path.join(await traversableTempDir('start-'), 'data', 'not-yet');
  expect(existsSync(dataDir)).toBe(false);
  const started = Date.now();
  const nurture = await s.worker('start-external', { command: 'start', env: { NURTURE_DATA_DIR: dataDir, HOST: '127.0.0.1', PORT: '0' } });
  const readyMs = Date.now() - started;
  expect(existsSync(path.join(dataDir, 'runtime.json'))).toBe(true);
  const api = /API\s+(http:\/\/\S+)/.exec(nurture.stdout())![1]!;

  const body = '{}';
  const res = await fetch(`${api}/v1/sequences/chaos-blast/fanout`, { method: 'POST', headers: { 'content-type': 'application/json', ...signedHeaders(SECRETS.webhookSecret, body) }, body });
  expect(res.status).toBe(200);
  const { fanoutId } = (await res.json()) as { fanoutId: string };
  expect(await s.db.sql`select id from fanouts where id = ${fanoutId}`).toHaveLength(1);

  await waitForOrExplain(s, 'the fan-out sent', () => settled(s, LEADS), 60_000);
  const t = await tally('`nurture start` on external services', s.db.sql, s.relay, owed(leadIds, 'chaos-blast', ['benchmark']));

  nurture.child.kill('SIGTERM');
  const exit = await nurture.exited;
  recordResult(80, t, `DATABASE_URL, REDIS_URL, SMTP_URL and both secrets set, NURTURE_DATA_DIR absent: created, ready in ${(readyMs / 1000).toFixed(1)} s; a signed fan-out through its API sent; exit ${exit.code} on SIGTERM (before: ENOENT on runtime.json at start)`);
  expect(t.statuses).toEqual({ sent: LEADS });
  expect(t).toMatchObject({ delivered: LEADS, duplicates: 0, lost: 0, uncertain: 0, strangers: 0 });
  expect(exit).toMatchObject({ code: 0, signal: null });
  expect(existsSync(path.join(dataDir, 'runtime.json'))).toBe(false);
  expect(troubleIn(nurture.stderr())).toEqual([]);
});
