// The whole loop through real Redis, Postgres and SMTP: a signed webhook enrolls a lead, the rep's
// note arrives personalised and tracked, a person opens and clicks, the threaded follow-up goes out,
// they reply, the sequence stops and the lead advances into the next stage's sequence.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advances, enrollments, leads, messages, signals } from '../../src/db/schema.js';
import { logs } from '../../src/cli/logs.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

const CHROME = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
let offset = 0;
const clock = () => new Date(Date.now() + offset);

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configDir: 'test/fixtures/config/e2e', now: clock });
});
afterAll(async () => h?.close());

const lead = {
  email: 'Ana.Lima@Acme.test',
  firstName: 'Ana',
  lastName: 'Lima',
  title: 'Head of Onboarding',
  persona: 'champion',
  timeZone: 'America/Sao_Paulo',
  owner: { name: 'Sam Rivera', email: 'sam@handrail.example', title: 'Account Executive' },
  account: { name: 'Acme <Logistics>', domain: 'acme.test', industry: 'logistics', tier: 'mid-market' },
};

describe('the relationship loop', () => {
  it('runs webhook → email → open/click → threaded follow-up → reply → stage advance', async () => {
    const res = await h.post('/v1/triggers', { type: 'lead.upsert', lead });
    expect(res.status).toBe(200);
    expect(res.json.created).toBe(true);
    expect(res.json.enrolled.map((e: { sequence: string }) => e.sequence)).toEqual(['awareness-notes']);

    // 1. The intro note: from the rep, personalised, with a text part, tracked links and a pixel.
    const first = await eventually('the intro email', async () => h.smtp.mails[0]);
    const p = first.parsed;
    expect(p.from?.value[0]).toMatchObject({ address: 'sam@handrail.example', name: 'Sam Rivera' });
    expect(first.envelopeTo).toEqual(['ana.lima@acme.test']);
    expect(p.subject).toBe('Something for the Acme <Logistics> onboarding team');
    expect(p.messageId).toMatch(/^<[0-9a-f-]{36}@nurture\.test>$/);
    // RFC 8058 one-click unsubscribe: an https (here http on loopback) URL plus the POST marker.
    expect(first.raw).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r?$/m);
    expect(first.raw.replace(/\r?\n /g, ' ')).toMatch(new RegExp(`^List-Unsubscribe: <${h.http.url}/u/[\\w.-]+>\\r?$`, 'm'));
    expect(p.html).toContain('Ana');
    // Lead data is escaped, never markup.
    expect(p.html).toContain('Acme &lt;Logistics&gt;');
    expect(p.html).not.toContain('Acme <Logistics>');
    expect(p.text).toContain('Ana');
    const pixel = /src="([^"]+\/t\/o\/[^"]+\.gif)"/.exec(String(p.html))?.[1];
    const tracked = [...String(p.html).matchAll(/href="([^"]+\/t\/c\/[^"]+)"/g)].map((m) => m[1]!);
    expect(pixel).toBeTruthy();
    expect(tracked.length).toBeGreaterThan(0);
    expect(p.html).not.toContain('https://handrail.example/guides/first-30-days-of-onboarding');

    // The sink keeps the mail before it answers 250: wait for the row to record that answer.
    const row = await eventually('intro marked sent', async () => {
      const [r] = await h.ctx.db.select().from(messages).where(eq(messages.stepId, 'intro'));
      return r?.status === 'sent' ? r : null;
    });
    expect(row).toMatchObject({ status: 'sent', subject: 'Something for the Acme <Logistics> onboarding team' });
    expect(row!.relayResponse).toContain('250');
    expect(`<${row!.messageId}>`).toBe(p.messageId);

    // 2. A person opens it a minute later and follows the guide link: a signed redirect to the real URL.
    offset += 60_000;
    const open = await fetch(pixel!, { headers: { 'user-agent': CHROME } });
    expect(open.status).toBe(200);
    expect(open.headers.get('content-type')).toBe('image/gif');
    const guide = tracked.find((u) => u.endsWith('/guide'))!;
    const click = await fetch(guide, { redirect: 'manual', headers: { 'user-agent': CHROME } });
    expect(click.status).toBe(302);
    expect(click.headers.get('location')).toBe('https://handrail.example/guides/first-30-days-of-onboarding');
    // A tampered link goes nowhere. (The signature is base64url: its first character may be '-' or '_'.)
    const tampered = guide.replace(/\/t\/c\/([^/.]+)\.([\w-])/, (_m, id: string, c: string) => `/t/c/${id}.${c === 'X' ? 'Y' : 'X'}`);
    expect(tampered).not.toBe(guide);
    const forged = await fetch(tampered, { redirect: 'manual' });
    expect(forged.status).toBe(404);

    const human = await eventually('two human signals', async () => {
      const rows = await h.ctx.db.select().from(signals).where(eq(signals.human, true));
      return rows.length >= 2 ? rows : null;
    });
    expect(human.map((s) => s.kind).sort()).toEqual(['click', 'open']);
    expect(human.find((s) => s.kind === 'click')).toMatchObject({ linkId: 'guide', tag: 'value:first-30-days', stepId: 'intro' });

    // 3. The follow-up is threaded under the intro.
    const second = await eventually('the follow-up', async () => h.smtp.mails[1]);
    expect(second.parsed.inReplyTo).toBe(p.messageId);
    expect(second.parsed.references).toContain(p.messageId);
    expect(second.parsed.subject).toBe('Re: Something for the Acme <Logistics> onboarding team');

    // 4. An hour on, Ana replies from her mail client; the inbound endpoint matches it by In-Reply-To.
    // The last note is due by then: the background reconcile, which would send it, waits for the reply.
    const maintenance = h.worker('maintenance');
    await maintenance.pause();
    offset += 3_600_000;
    const reply = [
      'From: Ana Lima <ana.lima@acme.test>',
      'To: Sam Rivera <sam@handrail.example>',
      `Subject: ${second.parsed.subject}`,
      `Message-ID: <CAF=reply-1@mail.gmail.com>`,
      `In-Reply-To: ${second.parsed.messageId}`,
      `References: ${p.messageId} ${second.parsed.messageId}`,
      'Date: ' + new Date(clock().getTime() - 1000).toUTCString(),
      'Content-Type: text/plain; charset=UTF-8',
      '',
      'Hi Sam, this was useful. Could we talk next week?',
      '',
      `On Tue, Sam Rivera <sam@handrail.example> wrote:`,
      '> Hi Ana,',
      '',
    ].join('\r\n');
    const inbound = await h.post('/v1/inbound', null, { raw: reply, headers: { 'content-type': 'message/rfc822' } });
    expect(inbound.status).toBe(200);
    expect(inbound.json).toMatchObject({ matched: true, kind: 'reply', recorded: true });
    maintenance.resume();

    // 5. The reply stops the one-to-one sequence and advances Ana to interest, whose sequence takes over.
    const advanced = await eventually('the advance', async () => (await h.ctx.db.select().from(advances))[0]);
    expect(advanced).toMatchObject({ fromStage: 'awareness', toStage: 'interest', rule: 'advancement.awareness' });
    expect(JSON.stringify(advanced.evidence)).toContain('replied');
    const [ana] = await h.ctx.db.select().from(leads);
    expect(ana).toMatchObject({ email: 'ana.lima@acme.test', stage: 'interest' });
    const runs = await h.ctx.db.select().from(enrollments);
    expect(runs.find((r) => r.sequenceId === 'awareness-notes')).toMatchObject({ state: 'exited', exitReason: 'replied' });
    expect(runs.find((r) => r.sequenceId === 'interest-call')).toBeTruthy();
    const third = await eventually('the interest-stage email', async () => h.smtp.mails[2]);
    expect(third.parsed.subject).toBe('The handoff playbook: from signed contract to first value');
    expect(third.parsed.inReplyTo).toBeUndefined();
    // The awareness sequence's last note is never sent.
    expect(h.smtp.mails.filter((m) => m.parsed.subject?.startsWith('Re:'))).toHaveLength(1);

    // 6. The log tells the story, one line per event.
    const lines: string[] = [];
    await logs({ databaseUrl: h.databaseUrl, follow: false, json: false, lead: 'ana.lima@acme.test', limit: 200, write: (l) => lines.push(l) });
    const story = lines.join('\n');
    for (const kind of ['enrolled', 'sent', 'open', 'click', 'reply', 'advanced']) expect(story).toMatch(new RegExp(`\\b${kind}\\b`));
    expect(story).toContain('ana.lima@acme.test');
  });
});
