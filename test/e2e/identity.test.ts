// What a person sees of who wrote to them: segmented mail is from and signed by its brand sender and
// carries funnel.yaml's postal address; one-to-one mail is signed by the rep; no Message-ID names an IP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  // As on a default start: no MESSAGE_ID_DOMAIN, and a PUBLIC_URL on 127.0.0.1.
  h = await startHarness({ configDir: 'test/fixtures/config/e2e', settings: { messageIdDomain: null } });
});
afterAll(async () => {
  await h?.close();
});

const owner = { name: 'Sam Rivera', email: 'sam@reps.handrail.example', title: 'Account Executive', phone: '+1-617-555-0100' };
const mailTo = (email: string) => eventually(`mail to ${email}`, async () => h.smtp.mails.find((m) => m.envelopeTo.includes(email)));

describe('sender, signature, postal address and Message-ID', () => {
  it('segmented mail is signed by its brand sender and carries the configured postal address', async () => {
    const r = await h.post('/v1/triggers', {
      type: 'lead.upsert',
      sequence: 'awareness-newsletter',
      lead: { email: 'bo@acme.test', firstName: 'Bo', persona: 'economic_buyer', owner, account: { name: 'Acme', domain: 'acme.test', tier: 'enterprise' } },
    });
    expect(r.status).toBe(200);
    const mail = await mailTo('bo@acme.test');
    expect(mail.parsed.from?.value[0]).toMatchObject({ name: 'Maya at Handrail', address: 'maya@handrail.example' });
    expect(mail.parsed.text).toContain('Maya at Handrail');
    expect(mail.parsed.html).toContain('mailto:hello@handrail.example');
    expect(mail.raw).not.toContain('Sam Rivera');
    expect(mail.raw).not.toContain('617-555-0100');
    expect(mail.parsed.text).toContain('Handrail Software Inc., 500 Harrison Ave, Boston, MA 02118, USA');
    expect(mail.parsed.messageId).toMatch(/^<[0-9a-f-]{36}@handrail\.example>$/);
  });

  it('one-to-one mail is signed by the rep, and its Message-ID names the rep\'s domain', async () => {
    const r = await h.post('/v1/triggers', {
      type: 'lead.upsert',
      lead: { email: 'cy@acme.test', firstName: 'Cy', persona: 'champion', owner, account: { name: 'Acme', domain: 'acme.test' } },
    });
    expect(r.status).toBe(200);
    const mail = await mailTo('cy@acme.test');
    expect(mail.parsed.from?.value[0]).toMatchObject({ name: 'Sam Rivera', address: 'sam@reps.handrail.example' });
    expect(mail.parsed.text).toContain('Sam Rivera');
    expect(mail.parsed.text).toContain('Account Executive, Handrail');
    expect(mail.parsed.text).not.toContain('Maya at Handrail');
    expect(mail.parsed.messageId).toMatch(/@reps\.handrail\.example>$/);
    expect(mail.raw).not.toMatch(/^Message-ID:.*@\[?\d+\.\d+\.\d+\.\d+/im);
  });
});
