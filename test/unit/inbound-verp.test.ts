// The per-message envelope sender (VERP): bounces name their message by a signed token, while the visible
// From and Reply-To stay the rep's own.
import { describe, expect, it } from 'vitest';
import { toMailOptions } from '../../src/mail/message.js';
import { bounceAddress, messageFromReplyAddress, messageFromTokenAddress, replyAddress } from '../../src/mail/tracking.js';

const secret = 'a-tracking-secret-of-some-length';
const id = '0b9d5c3e-7f1a-4c2e-9a51-3d2f4e6a8b10';

describe('bounce addresses', () => {
  it('name their message and say they are a bounce address', () => {
    const address = bounceAddress(secret, id, 'handrail.example');
    expect(address).toMatch(/^bounce\+[0-9a-f]{48}@handrail\.example$/);
    // SMTP allows 64 characters in a local part.
    expect(address.split('@')[0]!.length).toBeLessThanOrEqual(64);
    expect(messageFromTokenAddress(secret, [address])).toEqual({ id, purpose: 'bounce' });
    expect(messageFromTokenAddress(secret, [replyAddress(secret, id, 'in.handrail.example')])).toEqual({ id, purpose: 'reply' });
  });

  it('survive upper-casing and a forwarder\'s SRS rewrite, but not tampering or another secret', () => {
    const address = bounceAddress(secret, id, 'handrail.example');
    const local = address.split('@')[0]!;
    expect(messageFromTokenAddress(secret, [address.toUpperCase()])?.id).toBe(id);
    expect(messageFromTokenAddress(secret, [`SRS0=Hx3k=TT=handrail.example=${local}@forwarder.test`])?.id).toBe(id);
    expect(messageFromTokenAddress('another-secret-entirely-here', [address])).toBeNull();
    expect(messageFromTokenAddress(secret, [address.replace(/[0-9a-f](?=@)/, (c) => (c === '0' ? '1' : '0'))])).toBeNull();
    // A bounce token is not a reply token: the purpose is inside the MAC.
    expect(messageFromTokenAddress(secret, [address.replace('bounce+', 'reply+')])).toBeNull();
    expect(messageFromReplyAddress(secret, [address])).toBeNull();
  });
});

describe('toMailOptions envelope', () => {
  const base = {
    messageId: `${id}@nurture.test`,
    from: { name: 'Sam Rivera', email: 'sam@handrail.example' },
    to: { name: 'Ana', email: 'ana@lumen.test' },
    subject: 'Hello',
    html: '<p>Hi</p>',
    text: 'Hi',
    unsubscribeUrl: 'https://t.handrail.example/u/x',
  };

  it('sends from the VERP address in the envelope only: From stays the rep, no Reply-To is added', () => {
    const verp = bounceAddress(secret, id, 'handrail.example');
    const options = toMailOptions({ ...base, envelopeFrom: verp });
    expect(options.envelope).toEqual({ from: verp, to: ['ana@lumen.test'] });
    expect(options.from).toEqual({ name: 'Sam Rivera', address: 'sam@handrail.example' });
    expect(options.replyTo).toBeUndefined();
  });

  it('leaves the envelope to nodemailer without one', () => {
    expect(toMailOptions(base).envelope).toBeUndefined();
  });
});
