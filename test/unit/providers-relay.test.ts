import { describe, expect, it } from 'vitest';
import { toMailOptions } from '../../src/mail/message.js';
import {
  customArgHeaders,
  indexCandidates,
  matchEvent,
  parseMailgunEvent,
  parsePostmarkEvent,
  parseSendgridEvent,
  parseSesNotification,
  providerMessageIdFromReply,
  providerMessageKey,
  relayProviderOfHost,
  relayProviderOfUrl,
  type ProviderEvent,
} from '../../src/engagement/providers/index.js';

const ROW = '9a7c3e51-0b2d-4f86-a1c4-5e8d2b7f3a06';

describe('which provider a relay is', () => {
  it.each([
    ['smtp.sendgrid.net', 'sendgrid'],
    ['smtp.postmarkapp.com', 'postmark'],
    ['smtp-broadcasts.postmarkapp.com', 'postmark'],
    ['smtp.mailgun.org', 'mailgun'],
    ['smtp.eu.mailgun.org', 'mailgun'],
    ['email-smtp.eu-west-1.amazonaws.com', 'ses'],
    ['email-smtp-fips.us-east-1.amazonaws.com', 'ses'],
    ['smtp.gmail.com', null],
    ['sendgrid.net.evil.example', null],
    ['127.0.0.1', null],
  ])('%s → %s', (host, want) => expect(relayProviderOfHost(host)).toBe(want));

  it('reads the host of an SMTP URL', () => {
    expect(relayProviderOfUrl('smtp://apikey:SG.x@smtp.sendgrid.net:587')).toBe('sendgrid');
    expect(relayProviderOfUrl('not a url')).toBeNull();
    expect(relayProviderOfUrl(undefined)).toBeNull();
  });
});

describe("the provider's message id in the relay's 250", () => {
  it('SendGrid: "250 Ok: queued as <X-Message-Id>", the key of every sg_message_id of the message', () => {
    const id = providerMessageIdFromReply('sendgrid', '250 Ok: queued as Nr4vB7cXTq9mK2sLd5wE1a');
    expect(id).toBe('Nr4vB7cXTq9mK2sLd5wE1a');
    expect(providerMessageKey('sendgrid', 'Nr4vB7cXTq9mK2sLd5wE1a.recvd-7c9d8e6f5-m3x8p-1-695C1E00-4.0')).toBe(id);
    expect(providerMessageKey('sendgrid', 'Nr4vB7cXTq9mK2sLd5wE1a.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0')).toBe(id);
  });

  it('SES: "250 Ok <message id>", the id events give as mail.messageId', () => {
    const id = '0100019b9a4f3e2d-1c0b9a8f-7e6d-4c5b-a493-82716f5e4d3c-000000';
    expect(providerMessageIdFromReply('ses', `250 Ok ${id}`)).toBe(id);
    expect(providerMessageKey('ses', id)).toBe(id);
  });

  it('trusts only the documented form of the relay it is', () => {
    // A Postfix smarthost's queue id is not SendGrid's id, whatever the relay is called.
    expect(providerMessageIdFromReply('sendgrid', '250 2.0.0 Ok: queued as 0CA4412040B')).toBeNull();
    expect(providerMessageIdFromReply('ses', '250 Ok: queued as Nr4vB7cXTq9mK2sLd5wE1a')).toBeNull();
    expect(providerMessageIdFromReply(null, '250 Ok: queued as Nr4vB7cXTq9mK2sLd5wE1a')).toBeNull();
    expect(providerMessageIdFromReply('postmark', '250 Ok')).toBeNull();
    expect(providerMessageIdFromReply('mailgun', '250 Great success')).toBeNull();
    expect(providerMessageIdFromReply('sendgrid', undefined)).toBeNull();
  });
});

describe('custom-argument headers carry our row id back', () => {
  it.each([
    ['sendgrid', { 'X-SMTPAPI': `{"unique_args":{"nurture_message":"${ROW}"}}` }],
    ['postmark', { 'X-PM-Metadata-nurture_message': ROW }],
    ['mailgun', { 'X-Mailgun-Variables': `{"nurture_message":"${ROW}"}` }],
    ['ses', { 'X-SES-MESSAGE-TAGS': `nurture_message=${ROW}` }],
    [null, {}],
  ] as const)('%s', (provider, want) => expect(customArgHeaders(provider, ROW)).toEqual(want));

  it('and each provider reads it back from its events', () => {
    expect(parseSendgridEvent({ event: 'open', email: 'a@b.example', timestamp: 1767265200, sg_event_id: 'e', nurture_message: ROW })!.messageRowId).toBe(ROW);
    expect(parsePostmarkEvent({ RecordType: 'Delivery', DeliveredAt: '2026-01-07T13:30:04Z', Recipient: 'a@b.example', MessageID: 'm', Metadata: { nurture_message: ROW } })!.messageRowId).toBe(ROW);
    expect(parseMailgunEvent({ event: 'delivered', timestamp: 1767265200, recipient: 'a@b.example', 'user-variables': { nurture_message: ROW } })!.messageRowId).toBe(ROW);
    const ses = parseSesNotification({ eventType: 'Delivery', mail: { messageId: 'x', destination: ['a@b.example'], tags: { nurture_message: [ROW] } }, delivery: { timestamp: '2026-01-07T13:30:04Z', recipients: ['a@b.example'] } });
    expect(ses[0]!.messageRowId).toBe(ROW);
  });

  it('go on the message beside the unsubscribe headers', () => {
    const o = toMailOptions({ messageId: `${ROW}@m.example`, from: { email: 'a@m.example' }, to: { email: 'b@x.example' }, subject: 's', html: '<p>h</p>', text: 'h', unsubscribeUrl: 'https://m.example/u', headers: customArgHeaders('sendgrid', ROW) });
    // Prepared: nodemailer sends it as is, never as an encoded-word SendGrid couldn't parse.
    expect(o.headers).toMatchObject({ 'X-SMTPAPI': { prepared: true, value: `{"unique_args":{"nurture_message":"${ROW}"}}` }, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' });
  });
});

describe('matching an event to the exact message', () => {
  const msgs = [
    { id: ROW, messageId: `${ROW}@m.example`, providerMessageId: 'Nr4vB7cXTq9mK2sLd5wE1a', toAddress: 'dana@x.example' },
    { id: '11111111-2222-4333-8444-555555555555', messageId: '11111111-2222-4333-8444-555555555555@m.example', providerMessageId: null, toAddress: 'Dana@x.example' },
  ];
  const c = indexCandidates(msgs);
  const ev = (over: Partial<ProviderEvent>): ProviderEvent => ({ provider: 'sendgrid', sourceId: 's', kind: 'open', messageId: null, providerMessageId: null, messageRowId: null, email: 'dana@x.example', at: new Date(0), raw: {}, ...over });

  it('custom argument first, then provider id, then Message-ID, then only the address', () => {
    expect(matchEvent(ev({ messageRowId: msgs[1]!.id, providerMessageId: 'Nr4vB7cXTq9mK2sLd5wE1a.recvd-1' }), c)).toMatchObject({ method: 'custom_arg', message: { id: msgs[1]!.id } });
    expect(matchEvent(ev({ providerMessageId: 'Nr4vB7cXTq9mK2sLd5wE1a.recvd-1', messageId: msgs[1]!.messageId }), c)).toMatchObject({ method: 'provider_message_id', message: { id: ROW } });
    expect(matchEvent(ev({ messageId: msgs[1]!.messageId }), c)).toMatchObject({ method: 'message_id', message: { id: msgs[1]!.id } });
    expect(matchEvent(ev({}), c)).toEqual({ method: 'address', message: null });
    expect(matchEvent(ev({ email: null }), c)).toEqual({ method: null, message: null });
  });

  it('never a message that went to someone else', () => {
    expect(matchEvent(ev({ messageRowId: ROW, email: 'mallory@y.example' }), c)).toEqual({ method: 'address', message: null });
    // An event without a recipient (an SES open of a multi-recipient message) is decided by the id.
    expect(matchEvent(ev({ messageRowId: ROW, email: null }), c)).toMatchObject({ method: 'custom_arg' });
  });
});
