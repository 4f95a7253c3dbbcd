// Email service providers' webhooks: each is verified the way its provider signs (or authenticates),
// then parsed by the pure parsers in src/engagement/providers. An unconfigured provider is refused:
// nothing unsigned is ever believed.
import type { IncomingMessage } from 'node:http';
import type { Context } from '../context.js';
import {
  isProviderName,
  isTrustedSigningCertUrl,
  isTrustedSubscribeUrl,
  mailgunSignatureOf,
  providers,
  SENDGRID_SIGNATURE_HEADER,
  SENDGRID_TIMESTAMP_HEADER,
  verifyBasicAuth,
  verifyMailgunSignature,
  verifySendgridSignature,
  verifySnsSignature,
  type ProviderName,
  type Verification,
} from '../engagement/providers/index.js';
import { receiveInbound } from '../usecases/receiveInbound.js';
import { recordProviderEvents } from '../usecases/recordProviderEvents.js';
import { confirmSnsSubscription } from '../usecases/confirmSnsSubscription.js';
import { parseForm } from './forms.js';
import { readableMail } from './mail.js';
import { HttpError } from './respond.js';


export function providerName(name: string): ProviderName {
  if (!isProviderName(name)) throw new HttpError(404, 'unknown_provider', `unknown provider "${name}": expected sendgrid, postmark, mailgun or ses`);
  return name;
}

async function decode(req: IncomingMessage, body: Buffer): Promise<unknown> {
  const type = String(req.headers['content-type'] ?? '');
  if (/multipart\/form-data|application\/x-www-form-urlencoded/i.test(type)) return parseForm(body, type);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid_json', 'body is neither JSON nor a form');
  }
}

/** The settings a provider's webhooks need that are not set, or null when it is configured. */
function missingSettings(ctx: Context, p: ProviderName): string | null {
  const s = ctx.settings.providers;
  switch (p) {
    case 'sendgrid':
      return s.sendgridPublicKey ? null : 'SENDGRID_WEBHOOK_PUBLIC_KEY';
    case 'postmark':
      return s.postmarkUser && s.postmarkPassword ? null : 'POSTMARK_WEBHOOK_USER and POSTMARK_WEBHOOK_PASSWORD';
    case 'mailgun':
      return s.mailgunSigningKey ? null : 'MAILGUN_SIGNING_KEY';
    case 'ses':
      return s.sesTopicArns.length ? null : 'SES_TOPIC_ARNS';
  }
}

/**
 * What can be refused before a byte of the body is read: an unknown provider, one that is not configured,
 * and Postmark's credentials (they travel in a header).
 */
export function providerPreflight(ctx: Context, name: string, req: IncomingMessage): ProviderName {
  const p = providerName(name);
  const missing = missingSettings(ctx, p);
  if (missing) throw new HttpError(503, 'provider_not_configured', `${p} webhooks are off: set ${missing} to accept them`);
  if (p === 'postmark') {
    const v = verifyBasicAuth(header(req, 'authorization'), ctx.settings.providers.postmarkUser!, ctx.settings.providers.postmarkPassword!);
    if (!v.ok) throw new HttpError(401, 'bad_signature', `postmark webhook refused: ${v.reason}`);
  }
  return p;
}

async function verify(ctx: Context, p: ProviderName, req: IncomingMessage, body: Buffer, payload: unknown): Promise<Verification> {
  const s = ctx.settings.providers;
  const now = ctx.now();
  const missing = missingSettings(ctx, p);
  if (missing) throw new HttpError(503, 'provider_not_configured', `${p} webhooks are off: set ${missing} to accept them`);
  switch (p) {
    case 'sendgrid':
      return verifySendgridSignature({ publicKey: s.sendgridPublicKey!, rawBody: body, signature: header(req, SENDGRID_SIGNATURE_HEADER), timestamp: header(req, SENDGRID_TIMESTAMP_HEADER), now });
    case 'postmark':
      return verifyBasicAuth(header(req, 'authorization'), s.postmarkUser!, s.postmarkPassword!);
    case 'mailgun':
      return verifyMailgunSignature({ signingKey: s.mailgunSigningKey!, signature: mailgunSignatureOf(payload), now });
    case 'ses': {
      // Anyone can point an SNS topic of their own at us, and SNS signs it: only the user's topics count.
      const env = payload as { TopicArn?: unknown; Timestamp?: unknown };
      if (!s.sesTopicArns.includes(String(env.TopicArn))) return { ok: false, reason: `topic ${String(env.TopicArn)} is not one of SES_TOPIC_ARNS` };
      const sent = Date.parse(String(env.Timestamp));
      if (!Number.isFinite(sent) || Math.abs(now.getTime() - sent) > SNS_MAX_AGE_MS) return { ok: false, reason: 'SNS message timestamp is missing or too old' };
      const url = (payload as { SigningCertURL?: unknown; SigningCertUrl?: unknown }).SigningCertURL ?? (payload as { SigningCertUrl?: unknown }).SigningCertUrl;
      if (!isTrustedSigningCertUrl(url)) return { ok: false, reason: 'SigningCertURL is not an Amazon SNS certificate URL' };
      const fetchCert = s.snsCertificate ?? fetchSnsCertificate;
      let certificate: string;
      try {
        certificate = await fetchCert(String(url));
      } catch (err) {
        // Amazon's certificate host is away, not a forgery: ask SNS to come back rather than answer 500.
        const why = err instanceof Error ? err.message : String(err);
        console.warn(`[providers] could not fetch the SNS signing certificate ${String(url)}: ${why}`);
        throw HttpError.retryable('sns_certificate_unavailable', `could not fetch the SNS signing certificate to verify the message (${why}); retry shortly`, 60);
      }
      return verifySnsSignature(payload, certificate) ? { ok: true } : { ok: false, reason: 'SNS signature does not verify' };
    }
  }
}

export async function providerEvents(ctx: Context, name: string, req: IncomingMessage, body: Buffer) {
  const p = providerName(name);
  const payload = await decode(req, body);
  const v = await verify(ctx, p, req, body, payload);
  if (!v.ok) throw new HttpError(401, 'bad_signature', `${p} webhook refused: ${v.reason}`);
  const sns = payload as { Type?: string; SubscribeURL?: string; MessageId?: string; TopicArn?: string };
  if (p === 'ses' && sns.Type === 'SubscriptionConfirmation') {
    // Subscribing nurture to one of the user's SES topics (verified above: signed, fresh, an allowed
    // topic): confirm by visiting the Amazon-hosted SubscribeURL, and nothing else.
    if (!isTrustedSubscribeUrl(sns.SubscribeURL)) throw new HttpError(400, 'untrusted_url', 'SubscribeURL is not an https URL on an Amazon SNS host');
    const r = await confirmSnsSubscription(ctx, { MessageId: String(sns.MessageId), TopicArn: String(sns.TopicArn), SubscribeURL: String(sns.SubscribeURL) });
    if (!r.confirmed) {
      // Retryable: SNS (or a person pressing "Request confirmation") can try again once SNS is reachable.
      throw HttpError.retryable('subscription_confirm_failed', `could not confirm the SNS subscription to ${r.topicArn}: ${r.why}`, 60);
    }
    return r;
  }
  if (p === 'ses' && sns.Type === 'UnsubscribeConfirmation') {
    // The user removed the subscription; SNS asks whether to re-subscribe. Nurture does not.
    return { confirmed: false, ignored: 'UnsubscribeConfirmation', topicArn: sns.TopicArn ?? null };
  }
  return recordProviderEvents(ctx, providers[p].parseEvents(payload));
}

export async function providerInbound(ctx: Context, name: string, req: IncomingMessage, body: Buffer) {
  const p = providerName(name);
  const payload = await decode(req, body);
  const v = await verify(ctx, p, req, body, payload);
  if (!v.ok) throw new HttpError(401, 'bad_signature', `${p} inbound refused: ${v.reason}`);
  const raw = providers[p].inboundToRaw(payload);
  if (!raw) return { matched: false, reason: 'the payload carries no message' };
  return readableMail(() => receiveInbound(ctx, raw));
}

/** SNS retries for up to an hour by default; anything older is a replay. */
const SNS_MAX_AGE_MS = 60 * 60 * 1000;

const header = (req: IncomingMessage, name: string) => {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] ?? null : (v ?? null);
};

const certificates = new Map<string, Promise<string>>();
function fetchSnsCertificate(url: string): Promise<string> {
  let c = certificates.get(url);
  if (!c) {
    c = fetch(url, { signal: AbortSignal.timeout(10_000) }).then((r) => {
      if (!r.ok) throw new Error(`SNS certificate ${url}: HTTP ${r.status}`);
      return r.text();
    });
    c.catch(() => certificates.delete(url));
    certificates.set(url, c);
  }
  return c;
}
