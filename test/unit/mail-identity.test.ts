// Who a message is from, who signs it, and what its Message-ID names: decided in one place each.
import { describe, expect, it } from 'vitest';
import { readEnv } from '../../src/config/env.js';
import { settingsFrom } from '../../src/cli/runtime.js';
import { isIpLiteral, messageIdDomain } from '../../src/mail/message.js';
import { senderFor } from '../../src/mail/sender.js';
import { makeFunnel } from '../fixtures/simulate/engine.js';

const funnel = makeFunnel({
  senders: {
    brand: { name: 'Maya at Handrail', email: 'maya@handrail.example', replyTo: 'hello@handrail.example' },
    events: { name: 'Handrail Events', email: 'events@news.handrail.example' },
  },
});
const rep = { name: 'Sam Rivera', email: 'sam@reps.handrail.example', title: 'Account Executive', phone: '+1-617-555-0100' };

describe('the sender and the signature', () => {
  it('segmented mail is from and signed by its brand sender, never by the lead\'s rep', () => {
    const s = senderFor(funnel, { mode: 'segmented', sender: 'events' }, {}, rep)!;
    expect(s.from).toEqual({ name: 'Handrail Events', email: 'events@news.handrail.example' });
    expect(s.signer).toEqual({ name: 'Handrail Events', email: 'events@news.handrail.example', title: null, phone: null, replyTo: null });
    // Without a named sender: the first one listed.
    expect(senderFor(funnel, { mode: 'segmented' }, {}, rep)!.signer).toMatchObject({ name: 'Maya at Handrail', replyTo: 'hello@handrail.example' });
  });

  it('one-to-one mail is from and signed by the rep, unless a step names a brand sender', () => {
    const s = senderFor(funnel, { mode: 'one_to_one' }, {}, rep)!;
    expect(s.from).toEqual({ name: 'Sam Rivera', email: 'sam@reps.handrail.example' });
    expect(s.replyTo).toBeNull();
    expect(s.signer).toEqual({ ...rep, replyTo: null });
    expect(senderFor(funnel, { mode: 'one_to_one' }, { sender: 'brand' }, rep)!.signer.name).toBe('Maya at Handrail');
    // A lead without a rep hears from the brand, signed by the brand.
    expect(senderFor(funnel, { mode: 'one_to_one' }, {}, null)!.signer.name).toBe('Maya at Handrail');
  });

  it('is null when there is nobody to send as', () => {
    expect(senderFor({ senders: {} }, { mode: 'segmented' }, {}, rep)).toBeNull();
    expect(senderFor({ senders: {} }, { mode: 'one_to_one' }, { sender: 'constructor' }, null)).toBeNull();
  });
});

describe('the Message-ID domain', () => {
  it('is MESSAGE_ID_DOMAIN when set, else the From address\'s domain', () => {
    expect(messageIdDomain('mail.handrail.example', 'maya@handrail.example')).toBe('mail.handrail.example');
    expect(messageIdDomain(null, 'Sam@Reps.Handrail.example')).toBe('reps.handrail.example');
  });

  it('is never an IP literal', () => {
    expect(messageIdDomain('127.0.0.1', 'maya@handrail.example')).toBe('handrail.example');
    expect(messageIdDomain(null, 'ops@[10.0.0.1]')).not.toMatch(/\d+\.\d+\.\d+\.\d+/);
    expect(messageIdDomain(null, 'ops@[IPv6:::1]')).not.toContain(':');
    expect(messageIdDomain(null, null)).toBe('nurture.invalid');
    for (const ip of ['127.0.0.1', '[10.0.0.1]', '::1', '[IPv6:2001:db8::1]']) expect(isIpLiteral(ip)).toBe(true);
    for (const name of ['handrail.example', 'localhost', 'mail-1.handrail.example']) expect(isIpLiteral(name)).toBe(false);
  });

  it('is left to the sender on a default start, where PUBLIC_URL is http://127.0.0.1:8787', () => {
    const env = readEnv({ WEBHOOK_SECRET: 'whsec_0123456789abcdef', TRACKING_SECRET: '0123456789abcdef' });
    expect(settingsFrom(env, '/nonexistent').messageIdDomain).toBeNull();
    const set = readEnv({ WEBHOOK_SECRET: 'whsec_0123456789abcdef', TRACKING_SECRET: '0123456789abcdef', MESSAGE_ID_DOMAIN: 'mail.handrail.example' });
    expect(settingsFrom(set, '/nonexistent').messageIdDomain).toBe('mail.handrail.example');
  });

  it('refuses an IP address as MESSAGE_ID_DOMAIN at start-up, naming the variable', () => {
    expect(() => readEnv({ MESSAGE_ID_DOMAIN: '192.0.2.10' })).toThrow(/MESSAGE_ID_DOMAIN: expected a domain name/);
    expect(() => readEnv({ MESSAGE_ID_DOMAIN: 'mail.handrail.example' })).not.toThrow();
  });
});
