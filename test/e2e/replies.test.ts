// Real mail clients' answers through the inbound endpoint: an out-of-office (Exchange, with a return
// date) does not stop a one-to-one sequence but holds it until the person is back; a real reply stops it.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhook } from '../../src/http/signing.js';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activity, enrollments, messages, signals } from '../../src/db/schema.js';
import { replyAddress } from '../../src/mail/tracking.js';
import { wakeJobId, wakeSecondOf } from '../../src/queue/index.js';
import { eventually, runDueStepOf, startHarness, type Harness } from '../support/harness.js';

// The fixtures were written in early January 2026: run the clock from then.
const started = Date.now();
const clock = () => new Date(Date.UTC(2026, 0, 5, 9, 30) + (Date.now() - started));
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configDir: 'test/fixtures/config/e2e', now: clock });
});
afterAll(async () => {
  await h?.close();
  await crm.close();
});

/** The rep's CRM: takes signed webhooks and keeps them. */
const crm = {
  received: [] as { headers: Record<string, string>; body: string }[],
  url: '',
  server: createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      crm.received.push({ headers: req.headers as Record<string, string>, body });
      res.writeHead(204).end();
    });
  }),
  close: () => new Promise<void>((r) => crm.server.close(() => r())),
};
beforeAll(async () => {
  await new Promise<void>((r) => crm.server.listen(0, '127.0.0.1', () => r()));
  crm.url = `http://127.0.0.1:${(crm.server.address() as AddressInfo).port}/crm`;
});

/** A captured mail made to answer `messageId`, written by `from` (only the lead's own reply moves the lead). */
const answering = (file: string, messageId: string, from?: string) => {
  const raw = readFileSync(`test/fixtures/mail/${file}`, 'utf8')
    .replace(/^In-Reply-To: .*$/m, `In-Reply-To: <${messageId}>`)
    .replace(/^References: .*$/m, `References: <${messageId}>`);
  return from ? raw.replace(/^From: .*$/m, `From: ${from}`) : raw;
};

describe('replies and out-of-office', () => {
  it('holds the sequence until an out-of-office return date, then stops it on a real reply', async () => {
    // The out-of-office must arrive during the 2-second wait after the intro, however slow the machine:
    // step jobs wait while this test runs the intro's step itself, and the wake job for the wait's end
    // (superseded by the postponement) runs only once the out-of-office is in.
    const stepper = h.worker('step');
    await stepper.pause();
    await h.post('/v1/triggers', { type: 'lead.upsert', lead: { email: 'henrik.larsen@nordhavn-shipping.test', firstName: 'Henrik', persona: 'champion', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Nordhavn Shipping', domain: 'nordhavn-shipping.test' } } });
    const enrolled = await runDueStepOf(h, 'henrik.larsen@nordhavn-shipping.test');
    expect(enrolled.ran).toBe('ran');
    const [waiting] = await h.ctx.db.select().from(enrollments).where(eq(enrollments.id, enrolled.id));
    expect(waiting).toMatchObject({ cursor: 'pause' });
    const intro = await eventually('intro', async () => h.smtp.mails[0]);
    const introId = intro.parsed.messageId!.replace(/[<>]/g, '');

    const oof = await h.post('/v1/inbound', null, { raw: answering('exchange-oof.eml', introId) });
    expect(oof.status).toBe(200);
    expect(oof.json).toMatchObject({ matched: true, kind: 'auto_reply', recorded: true });
    const [auto] = await h.ctx.db.select().from(signals).where(eq(signals.kind, 'auto_reply'));
    expect(auto).toMatchObject({ human: false });
    expect(auto!.evidence.returnDate).toBe('2026-01-12T00:00:00.000Z');

    // The 2-second wait is stretched to the return date: the follow-up is neither sent nor dropped.
    const postponed = await eventually('postponement', async () => {
      const rows = await h.ctx.db.select().from(activity).where(eq(activity.kind, 'wait'));
      return rows.find((r) => r.detail.includes('out of office'));
    });
    expect(postponed.detail).toContain('2026-01-12T00:00:00.000Z');
    // The wake job of the second the wait was to end in comes due and finds it no longer due there:
    // nothing is sent, nothing moves on.
    stepper.resume();
    const wake = (await h.ctx.queues.step.getJob(wakeJobId({ second: wakeSecondOf(waiting!.nextDueAt!) })))!;
    expect(wake.name).toBe('wake');
    await eventually('the superseded wait ran', async () => (await wake.getState()) === 'completed');
    expect((await h.ctx.queues.step.getJob(wake.id!))!.returnvalue).toEqual({ ran: 0, more: false });
    const [run] = await h.ctx.db.select().from(enrollments).where(eq(enrollments.sequenceId, 'awareness-notes'));
    expect(run).toMatchObject({ state: 'active', cursor: 'pause' });
    expect(run!.nextDueAt!.toISOString()).toBe('2026-01-12T00:00:00.000Z');
    expect(h.smtp.mails).toHaveLength(1);

    // A person's real reply (Gmail) ends the one-to-one sequence, and the rep's CRM hears of it at once.
    h.ctx.config.funnel.webhooks = [{ url: crm.url, events: ['lead.replied'] }];
    const reply = await h.post('/v1/inbound', null, { raw: answering('gmail-web-reply.eml', introId, 'Henrik Larsen <henrik.larsen@nordhavn-shipping.test>') });
    expect(reply.json).toMatchObject({ matched: true, kind: 'reply', recorded: true });
    const [ended] = await h.ctx.db.select().from(enrollments).where(eq(enrollments.sequenceId, 'awareness-notes'));
    expect(ended).toMatchObject({ state: 'exited', exitReason: 'replied' });
    const [r] = await h.ctx.db.select().from(signals).where(and(eq(signals.kind, 'reply'), eq(signals.human, true)));
    expect(String(r!.evidence.newText)).toContain('Thursday afternoon works');
    expect(String(r!.evidence.newText)).not.toContain('wrote:');
    expect((await h.ctx.db.select().from(messages)).filter((m) => m.stepId === 'follow-up')).toHaveLength(0);
    const told = await eventually('lead.replied delivered', async () => crm.received[0]);
    // Signed as of the test's clock (January 2026): verified against that clock.
    const headers = { id: told.headers['webhook-id']!, timestamp: told.headers['webhook-timestamp']!, signature: told.headers['webhook-signature']! };
    expect(verifyWebhook(h.webhookSecret, Buffer.from(told.body), headers, h.ctx.now().getTime())).toEqual({ ok: true });
    const event = JSON.parse(told.body) as { type: string; data: { lead: { email: string; owner: { email: string } }; reply: { text: string; subject: string } } };
    expect(event.type).toBe('lead.replied');
    expect(event.data.lead).toMatchObject({ email: 'henrik.larsen@nordhavn-shipping.test', owner: { email: 'sam@handrail.example' } });
    expect(event.data.reply.text).toContain('Thursday afternoon works');
    expect(event.data.reply.text).not.toContain('wrote:');
    h.ctx.config.funnel.webhooks = [];
  });

  it('matches a reply by its per-message reply address when the client dropped In-Reply-To', async () => {
    await h.post('/v1/triggers', { type: 'lead.upsert', lead: { email: 'tok@nordhavn-shipping.test', firstName: 'Tove', persona: 'champion', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Nordhavn Shipping', domain: 'nordhavn-shipping.test' } } });
    await eventually('intro to Tove', async () => h.smtp.mails.find((m) => m.envelopeTo.includes('tok@nordhavn-shipping.test')));
    const [msg] = await h.ctx.db.select().from(messages).where(eq(messages.toAddress, 'tok@nordhavn-shipping.test'));
    const raw = [
      'From: Tove <tok@nordhavn-shipping.test>',
      `To: ${replyAddress(h.ctx.settings.trackingSecret, msg!.id, 'in.nurture.test')}`,
      'Subject: your guide',
      'Message-ID: <tove-1@nordhavn-shipping.test>',
      `Date: ${clock().toUTCString()}`,
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Read it, useful. Call me?',
      '',
    ].join('\r\n');
    const r = await h.post('/v1/inbound', null, { raw });
    expect(r.json).toMatchObject({ matched: true, kind: 'reply', recorded: true, messageId: msg!.messageId });
  });

  it('ignores inbound mail that answers nothing nurture sent', async () => {
    const r = await h.post('/v1/inbound', null, { raw: readFileSync('test/fixtures/mail/thunderbird-reply.eml', 'utf8') });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ matched: false });
  });
});
