// `nurture logs -f`: events appear as they commit, one line each, filtered, or as JSON lines.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logs } from '../../src/cli/logs.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configDir: 'test/fixtures/config/e2e' });
});
afterAll(async () => h?.close());

const upsert = (email: string) =>
  h.post('/v1/triggers', { type: 'lead.upsert', lead: { email, firstName: 'Lu', persona: 'champion', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Logs Co', domain: 'logs.test' } } });

describe('nurture logs', () => {
  it('follows new events as they happen, filtered by lead', async () => {
    await upsert('before@logs.test');
    await eventually('first mail', async () => h.smtp.mails[0]);
    const lines: string[] = [];
    // Start following with nothing old shown; once it has read where it starts, let things happen.
    const stop = new AbortController();
    let ready!: () => void;
    const started = new Promise<void>((resolve) => (ready = resolve));
    const following = logs({ databaseUrl: h.databaseUrl, follow: true, json: false, lead: 'follow@logs.test', limit: 0, signal: stop.signal, onFollowing: ready, write: (l) => lines.push(l) });
    await started;
    await upsert('follow@logs.test');
    await eventually('sent line', async () => lines.find((l) => /\bsent\b/.test(l)));
    stop.abort();
    await following;
    expect(lines.every((l) => l.includes('follow@logs.test'))).toBe(true);
    expect(lines.some((l) => /awareness-notes\s+enrolled/.test(l))).toBe(true);
    expect(lines.some((l) => /awareness-notes\/intro\s+sent\s+sent "Something for the Logs Co onboarding team"/.test(l))).toBe(true);
    expect(lines.join('\n')).not.toContain('before@logs.test');
  });

  it('prints JSON lines and filters by kind', async () => {
    const lines: string[] = [];
    await logs({ databaseUrl: h.databaseUrl, follow: false, json: true, kinds: ['sent'], limit: 50, write: (l) => lines.push(l) });
    const rows = lines.map((l) => JSON.parse(l) as { kind: string; email: string; sequenceId: string; stepId: string });
    expect(rows.length).toBeGreaterThanOrEqual(2);
    expect(rows.every((r) => r.kind === 'sent')).toBe(true);
    expect(rows.map((r) => r.email).sort()).toEqual(expect.arrayContaining(['before@logs.test', 'follow@logs.test']));
  });
});
