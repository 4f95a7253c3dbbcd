/**
 * Sending through a provider's SMTP relay: which provider a relay host belongs to, the custom-argument
 * header that makes its events carry our message row id, and the provider's message id in the relay's
 * 250 reply after DATA. Pure.
 *
 * Replies trusted (only these; anything else leaves the id to the first event that names the message):
 * - SendGrid: `250 Ok: queued as <X-Message-Id>` (SendGrid's answer in sendgrid/docs#2638). Its events'
 *   `sg_message_id` is that X-Message-Id, a dot and a per-recipient suffix (sendgrid/docs#3784; SendGrid
 *   support's Activity search `msg_id LIKE '<X-Message-ID>%'`), hence providerMessageKey.
 * - Amazon SES: `250 Ok <message id>` (SES "SMTP response codes"), the id events give as mail.messageId.
 * Postmark documents no id in its SMTP reply, and Mailgun keeps the Message-ID we set as its message id,
 * so for those two nothing is read from the reply.
 */
import { MESSAGE_ROW_ARG, type ProviderName } from './common.js';

const RELAY_HOSTS: [RegExp, ProviderName][] = [
  [/^smtp\.sendgrid\.net$/i, 'sendgrid'],
  [/^smtp(-broadcasts)?\.postmarkapp\.com$/i, 'postmark'],
  [/^smtp(\.eu)?\.mailgun\.org$/i, 'mailgun'],
  [/^email-smtp(-fips)?\.[a-z0-9-]+\.amazonaws\.com$/i, 'ses'],
];

/** The provider whose documented SMTP relay host this is; null for any other relay. */
export function relayProviderOfHost(host: string | null | undefined): ProviderName | null {
  const h = host?.trim().replace(/\.$/, '');
  if (!h) return null;
  return RELAY_HOSTS.find(([re]) => re.test(h))?.[1] ?? null;
}

/** The relay's provider from an SMTP URL (smtp://user:pass@smtp.sendgrid.net:587); null when unknown or unparsable. */
export function relayProviderOfUrl(smtpUrl: string | null | undefined): ProviderName | null {
  if (!smtpUrl) return null;
  try {
    return relayProviderOfHost(new URL(smtpUrl).hostname);
  } catch {
    return null;
  }
}

/**
 * Headers that make the provider echo our message row id in its events:
 * SendGrid `X-SMTPAPI: {"unique_args":{…}}` (string values only), Postmark `X-PM-Metadata-<key>`,
 * Mailgun `X-Mailgun-Variables: {…}` (JSON), SES `X-SES-MESSAGE-TAGS: name=value` (needs a
 * configuration set with event publishing). Each provider strips its own header before delivery.
 */
export function customArgHeaders(provider: ProviderName | null | undefined, messageRowId: string): Record<string, string> {
  switch (provider) {
    case 'sendgrid':
      return { 'X-SMTPAPI': JSON.stringify({ unique_args: { [MESSAGE_ROW_ARG]: messageRowId } }) };
    case 'postmark':
      return { [`X-PM-Metadata-${MESSAGE_ROW_ARG}`]: messageRowId };
    case 'mailgun':
      return { 'X-Mailgun-Variables': JSON.stringify({ [MESSAGE_ROW_ARG]: messageRowId }) };
    case 'ses':
      return { 'X-SES-MESSAGE-TAGS': `${MESSAGE_ROW_ARG}=${messageRowId}` };
    default:
      return {};
  }
}

const SENDGRID_REPLY = /^250[ -](?:2\.\d{1,3}\.\d{1,3} )?Ok: queued as ([A-Za-z0-9_-]{16,64})\s*$/i;
const SES_REPLY = /^250[ -](?:2\.\d{1,3}\.\d{1,3} )?Ok ([0-9a-f]{16}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-[0-9a-f]{6})\s*$/i;

/**
 * The provider's message id in its relay's reply to DATA, in the form its events name the message
 * (for SendGrid the X-Message-Id, i.e. the key of sg_message_id); null when the reply is not in the
 * provider's documented form.
 */
export function providerMessageIdFromReply(provider: ProviderName | null | undefined, reply: unknown): string | null {
  if (typeof reply !== 'string') return null;
  const line = reply.trim();
  const m = provider === 'sendgrid' ? SENDGRID_REPLY.exec(line) : provider === 'ses' ? SES_REPLY.exec(line) : null;
  return m?.[1] ?? null;
}
