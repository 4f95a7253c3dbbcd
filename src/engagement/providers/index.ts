/**
 * The providers nurture understands, each with how it authenticates its webhook POSTs, how its
 * (verified, JSON- or form-decoded) event bodies become ProviderEvents, and how its inbound format
 * becomes an RFC 5322 message for parseInboundMail. Pure: the HTTP layer reads bodies and headers,
 * verifies with the provider's function, then calls these.
 */
import type { ParseOptions, ProviderEvent, ProviderName } from './common.js';
import { mailgunInboundToRaw, parseMailgunEvent } from './mailgun.js';
import { parsePostmarkEvent, postmarkInboundToRaw } from './postmark.js';
import { parseSendgridEvents, sendgridInboundToRaw } from './sendgrid.js';
import { parseSesSnsEnvelope, sesInboundToRaw } from './ses.js';

export * from './common.js';
export * from './mailgun.js';
export * from './match.js';
export * from './postmark.js';
export * from './relay.js';
export * from './sendgrid.js';
export * from './ses.js';

export type ProviderSpec = {
  name: ProviderName;
  /** What proves a webhook POST came from the provider. */
  authentication: 'ecdsa-p256-sha256' | 'http-basic-auth' | 'hmac-sha256' | 'sns-rsa-signature';
  /** Verified webhook body → events (several for a SendGrid batch or a multi-recipient SES record). */
  parseEvents(body: unknown, opts?: ParseOptions): ProviderEvent[];
  /** Inbound payload → RFC 5322 text, or null when the payload carries no message. */
  inboundToRaw(payload: unknown): string | null;
};

const fields = (payload: unknown): Record<string, string | undefined> =>
  typeof payload === 'object' && payload !== null ? (payload as Record<string, string | undefined>) : {};

const one = (e: ProviderEvent | null): ProviderEvent[] => (e ? [e] : []);

export const providers: Record<ProviderName, ProviderSpec> = {
  sendgrid: {
    name: 'sendgrid',
    authentication: 'ecdsa-p256-sha256',
    parseEvents: (body, opts) => parseSendgridEvents(body, opts),
    inboundToRaw: (payload) => sendgridInboundToRaw(fields(payload)),
  },
  postmark: {
    name: 'postmark',
    authentication: 'http-basic-auth',
    parseEvents: (body, opts) => one(parsePostmarkEvent(body, opts)),
    inboundToRaw: (payload) => postmarkInboundToRaw(payload),
  },
  mailgun: {
    name: 'mailgun',
    authentication: 'hmac-sha256',
    parseEvents: (body, opts) => one(parseMailgunEvent(body, opts)),
    inboundToRaw: (payload) => mailgunInboundToRaw(fields(payload)),
  },
  ses: {
    name: 'ses',
    authentication: 'sns-rsa-signature',
    // SES records carry our Message-ID in mail.headers, so there is no custom-arg option to honour.
    parseEvents: (body) => parseSesSnsEnvelope(body),
    inboundToRaw: (payload) => {
      const env = fields(payload) as Record<string, unknown>;
      if (typeof env.Message !== 'string') return sesInboundToRaw(payload);
      try {
        return sesInboundToRaw(JSON.parse(env.Message));
      } catch {
        return null;
      }
    },
  },
};

export function isProviderName(name: string): name is ProviderName {
  return Object.hasOwn(providers, name);
}
