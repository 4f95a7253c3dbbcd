// An inbound email (a reply, an out-of-office, a bounce, a complaint) matched to the message it answers,
// checked against the address that message went to, and recorded as a signal with how it was matched.
import { createHash } from 'node:crypto';
import { and, count, desc, eq, gte, inArray, isNotNull, lte, or } from 'drizzle-orm';
import { parseDuration } from '../config/duration.js';
import type { Context } from '../context.js';
import { logActivityOnce } from '../db/activity.js';
import { accounts, leads, messages, signals } from '../db/schema.js';
import { bounceVerdict } from '../delivery/policy.js';
import { bounceSeverity, type Bounce } from '../engagement/bounces.js';
import type { Complaint } from '../engagement/complaints.js';
import { bounceOf, complaintOf, inboundKind, parseInboundMail, type InboundKind, type InboundMail } from '../engagement/inbound.js';
import { messageFromTokenAddress } from '../mail/tracking.js';
import { recordSignals, type SignalInput } from './recordSignals.js';

/** How the inbound mail was tied to its message; kept in the signal's evidence as `match`. */
export type MatchMethod = 'returned_headers' | 'verp' | 'reply_address' | 'in_reply_to' | 'references' | 'dsn_recipient' | 'sender_recent';

export type InboundResult =
  | { matched: false; kind: InboundKind; reason: string }
  | { matched: true; kind: InboundKind; messageId: string; match: MatchMethod; recorded: boolean };

export type ReceiveOptions = {
  /** SMTP envelope recipients, when the relay or provider passes them beside the message (RCPT TO). */
  envelopeTo?: string[];
  /** Names the mail when it has no Message-ID, so a second delivery of it is recognised (a mailbox's UIDVALIDITY and UID). */
  sourceId?: string;
  /** When it arrived, if not now (a mailbox's INTERNALDATE, for mail read after a while). */
  receivedAt?: Date;
};

const DEFAULT_MATCH_WINDOW = '30d';
const DEFAULT_SOFT_BOUNCES = 3;

type MessageRow = { id: string; messageId: string; to: string; leadId: string; sequenceId: string; stepId: string };
const messageColumns = { id: messages.id, messageId: messages.messageId, to: messages.toAddress, leadId: messages.leadId, sequenceId: messages.sequenceId, stepId: messages.stepId };

export async function receiveInbound(ctx: Context, raw: string | Buffer, options: ReceiveOptions = {}): Promise<InboundResult> {
  const receivedAt = options.receivedAt && options.receivedAt < ctx.now() ? options.receivedAt : ctx.now();
  const mail = await parseInboundMail(raw, { receivedAt });
  const kind = inboundKind(mail);
  const bounce = kind === 'bounce' || kind === 'delayed' || kind === 'notice' ? bounceOf(mail) : null;
  const complaint = kind === 'complaint' || kind === 'notice' ? complaintOf(mail) : null;

  const found = await findMessage(ctx, mail, kind, bounce, complaint, options, receivedAt);
  if ('reason' in found) return { matched: false, kind, reason: found.reason };
  const { msg, match } = found;

  // Whoever claims to report on a message must name the address it went to: a notice about another
  // address (a forwarder's target, a forgery) moves and suppresses no one.
  const named = bounce?.recipient ?? complaint?.recipient ?? null;
  if ((kind === 'bounce' || kind === 'delayed' || kind === 'complaint') && named && !sameAddress(named, msg.to)) {
    return { matched: false, kind, reason: `the ${kind} names ${named}, not ${msg.to} to whom the message went` };
  }
  // Names this mail wherever it is read from, so a second reading records (and logs) nothing more.
  const sourceId = `inbound-${mail.messageId ?? contentId(mail) ?? options.sourceId ?? `${msg.id}-${receivedAt.getTime()}`}`;
  if (kind === 'delayed' || kind === 'notice') {
    if (kind === 'delayed') await logDelay(ctx, msg, bounce!, match, sourceId);
    return { matched: true, kind, messageId: msg.messageId, match, recorded: false };
  }
  // A notice that names only an address proves nothing: anyone can write "Undeliverable" or an ARF report
  // naming a lead. It is shown, and suppresses no one; one that arrives at our signed envelope sender, or
  // quotes our Message-ID, does.
  if ((kind === 'bounce' || kind === 'complaint') && match === 'dsn_recipient') {
    await logUnverified(ctx, msg, kind, bounce?.diagnostic ?? complaint?.feedbackType ?? null, sourceId);
    return { matched: true, kind, messageId: msg.messageId, match, recorded: false };
  }

  const at = mail.date && mail.date <= receivedAt ? mail.date : receivedAt;
  const evidence: Record<string, unknown> = {
    match,
    from: mail.from?.address ?? null,
    sender: mail.from?.address && sameAddress(mail.from.address, msg.to) ? 'lead' : 'other',
    subject: mail.subject,
    newText: mail.newText.slice(0, 4000),
    headers: pick(mail.headers),
    ...(mail.date ? {} : { dateFrom: 'received' }),
  };
  const signal = await signalFor(ctx, kind, mail, msg, bounce, complaint, evidence);
  // Only the lead moves the lead: a reply from anyone else is recorded as who it is from.
  const author = kind === 'reply' ? await authorOf(ctx, mail.from?.address ?? null, msg) : null;
  const input =
    author && author.is !== 'lead'
      ? { ...signal, reason: author.is === 'colleague' ? 'colleague_reply' : author.is === 'new_colleague' ? 'new_colleague_reply' : 'stranger_reply', leadId: author.is === 'colleague' ? author.leadId : msg.leadId, evidence: { ...evidence, sender: author.is } }
      : signal;
  const r = await recordSignals(ctx, [{ sourceId, messageRowId: msg.id, at, ...input }]);
  if (kind === 'bounce') await ctx.db.update(messages).set({ status: 'bounced', error: bounce!.diagnostic }).where(eq(messages.id, msg.id));
  return { matched: true, kind, messageId: msg.messageId, match, recorded: r.recorded > 0 };
}

async function signalFor(
  ctx: Context,
  kind: InboundKind,
  mail: InboundMail,
  msg: MessageRow,
  bounce: Bounce | null,
  complaint: Complaint | null,
  evidence: Record<string, unknown>,
): Promise<Omit<SignalInput, 'sourceId' | 'messageRowId' | 'at'>> {
  if (kind === 'bounce') {
    const b = bounce!;
    const bounceEvidence = { ...evidence, smtp: b.diagnostic, status: b.status, recipient: b.recipient, format: b.format };
    if (bounceSeverity(b) === 'hard') return { kind: 'bounce', human: false, reason: 'hard_bounce', evidence: bounceEvidence };
    // A full mailbox or a policy block: counted, and suppresses only once it keeps happening.
    const threshold = ctx.config.funnel.sending?.suppressAfterSoftBounces ?? DEFAULT_SOFT_BOUNCES;
    const [earlier] = await ctx.db.select({ n: count() }).from(signals).where(and(eq(signals.leadId, msg.leadId), eq(signals.kind, 'bounce'), eq(signals.reason, 'soft_bounce')));
    const verdict = bounceVerdict(b.status, false, earlier?.n ?? 0, threshold);
    return verdict.suppress
      ? { kind: 'bounce', human: false, reason: 'hard_bounce', evidence: { ...bounceEvidence, why: verdict.why } }
      : { kind: 'bounce', human: false, reason: 'soft_bounce', evidence: { ...bounceEvidence, softBounces: verdict.softBounces } };
  }
  if (kind === 'complaint') {
    const c = complaint!;
    // A person pressed "this is spam": the same as a provider's complaint event.
    return { kind: 'complaint', human: true, reason: `arf_${c.feedbackType ?? 'abuse'}`, evidence: { ...evidence, feedbackType: c.feedbackType, userAgent: c.userAgent, sourceIp: c.sourceIp } };
  }
  if (kind === 'auto_reply') {
    return { kind: 'auto_reply', human: false, reason: mail.autoReply.reason ?? 'auto_reply', returnDate: mail.autoReply.returnDate, evidence };
  }
  return { kind: 'reply', human: true, reason: 'reply', evidence };
}

/**
 * The message the inbound mail is about, strongest evidence first: the Message-ID quoted back to us, our
 * signed envelope or reply address, the threading headers; failing all of those, the address (the failed
 * recipient of a notice, the sender of a reply) and that lead's latest message within the match window.
 */
async function findMessage(
  ctx: Context,
  mail: InboundMail,
  kind: InboundKind,
  bounce: Bounce | null,
  complaint: Complaint | null,
  options: ReceiveOptions,
  now: Date,
): Promise<{ msg: MessageRow; match: MatchMethod } | { reason: string }> {
  const byId: [MatchMethod, string][] = [];
  const returned = complaint?.originalMessageId ?? bounce?.originalMessageId ?? null;
  if (returned) byId.push(['returned_headers', returned]);
  if (mail.inReplyTo) byId.push(['in_reply_to', mail.inReplyTo]);
  for (const ref of [...mail.references].reverse()) byId.push(['references', ref]);

  const recipients = [
    ...mail.to,
    ...(options.envelopeTo ?? []),
    ...['cc', 'delivered-to', 'x-original-to', 'envelope-to', 'x-envelope-to', 'x-rcpt-to'].flatMap((h) => (mail.headers[h] ?? '').split(',')),
    // The complained-about message's Return-Path is our envelope sender, token included.
    ...(complaint?.originalReturnPath ? [complaint.originalReturnPath] : []),
  ];
  const token = messageFromTokenAddress(ctx.settings.trackingSecret, recipients);
  const ids = [...new Set(byId.map(([, id]) => id))];
  if (ids.length || token) {
    const rows = await ctx.db
      .select(messageColumns)
      .from(messages)
      .where(token ? or(inArray(messages.messageId, ids.length ? ids : ['-']), eq(messages.id, token.id)) : inArray(messages.messageId, ids));
    // The quoted Message-ID first, then our signed address (it cannot be guessed), then threading headers.
    const quoted = returned ? rows.find((r) => r.messageId === returned) : undefined;
    if (quoted) return { msg: quoted, match: 'returned_headers' };
    const signed = token ? rows.find((r) => r.id === token.id) : undefined;
    if (signed) return { msg: signed, match: token!.purpose === 'bounce' ? 'verp' : 'reply_address' };
    for (const [method, id] of byId) {
      const row = rows.find((r) => r.messageId === id);
      if (row) return { msg: row, match: method };
    }
  }

  if (kind === 'notice') return { reason: 'a notice that names no message nurture sent' };
  const windowMs = parseDuration(ctx.config.funnel.inbound?.matchWindow ?? DEFAULT_MATCH_WINDOW);
  const since = new Date(now.getTime() - windowMs);
  if (kind === 'bounce' || kind === 'delayed' || kind === 'complaint') {
    const recipient = bounce?.recipient ?? complaint?.recipient ?? null;
    if (!recipient) return { reason: `a ${kind} that names neither a message nurture sent nor its recipient` };
    const msg = await latestMessageTo(ctx, recipient, since, now);
    return msg ? { msg, match: 'dsn_recipient' } : { reason: `a ${kind} for ${recipient}, to whom nurture sent nothing in the last ${ctx.config.funnel.inbound?.matchWindow ?? DEFAULT_MATCH_WINDOW}` };
  }
  // A reply or auto-reply whose client dropped the threading headers: the sender's latest message.
  const sender = mail.from?.address;
  if (!sender) return { reason: 'no In-Reply-To, References, address of ours or sender' };
  if (senderAuthFailed(mail.headers)) return { reason: `the sender ${sender} failed authentication, or our server recorded none (Authentication-Results), so it is not matched by address` };
  const msg = await latestMessageTo(ctx, sender, since, now);
  return msg ? { msg, match: 'sender_recent' } : { reason: `does not answer any message nurture sent (nothing to ${sender} in the last ${ctx.config.funnel.inbound?.matchWindow ?? DEFAULT_MATCH_WINDOW})` };
}

/**
 * The lead's most recent message actually handed over (sent, or bounced later) between `since` and `until`
 * (when the mail arrived): mail read late (a mailbox watcher catching up) cannot answer a message sent after it.
 */
async function latestMessageTo(ctx: Context, address: string, since: Date, until: Date): Promise<MessageRow | null> {
  const [lead] = await ctx.db.select({ id: leads.id }).from(leads).where(eq(leads.email, address.toLowerCase()));
  if (!lead) return null;
  const [msg] = await ctx.db
    .select(messageColumns)
    .from(messages)
    .where(and(eq(messages.leadId, lead.id), isNotNull(messages.sentAt), gte(messages.sentAt, since), lte(messages.sentAt, until)))
    .orderBy(desc(messages.sentAt))
    .limit(1);
  return msg ?? null;
}

/**
 * Matching by sender trusts the From address, which anyone can write: only a sender our own receiving
 * server vouched for (the topmost Authentication-Results, RFC 8601) is matched by address. DMARC pass, or
 * DKIM or SPF pass with no DMARC fail; a missing header vouches for nothing.
 */
function senderAuthFailed(headers: Record<string, string>): boolean {
  const results = headers['authentication-results']?.toLowerCase();
  if (!results) return true;
  if (/\bdmarc=fail\b/.test(results)) return true;
  if (/\bdmarc=pass\b/.test(results)) return false;
  return !/\b(dkim|spf)=pass\b/.test(results);
}

/** One mailbox however it is written: case, and a `+tag` subaddress (RFC 5233) some clients reply from. */
function sameAddress(a: string, b: string): boolean {
  const norm = (x: string) => x.trim().toLowerCase().replace(/\+[^@]*@/, '@');
  return norm(a) === norm(b);
}

type Author = { is: 'lead' } | { is: 'colleague'; leadId: string } | { is: 'new_colleague' } | { is: 'stranger' };

/**
 * Who wrote a reply to `msg`: the lead; a colleague at the same account (a lead of it, or an address at its
 * domain nurture does not know yet); or someone else. Threading headers can be copied by anyone who saw the
 * mail (a forward, a cc), so only the lead's own address answers for the lead.
 */
async function authorOf(ctx: Context, from: string | null, msg: MessageRow): Promise<Author> {
  if (from && sameAddress(from, msg.to)) return { is: 'lead' };
  if (!from) return { is: 'stranger' };
  const [lead] = await ctx.db.select({ accountId: leads.accountId, domain: accounts.domain }).from(leads).innerJoin(accounts, eq(accounts.id, leads.accountId)).where(eq(leads.id, msg.leadId));
  const [known] = await ctx.db.select({ id: leads.id, accountId: leads.accountId }).from(leads).where(eq(leads.email, from.toLowerCase()));
  if (known && lead && known.accountId === lead.accountId) return { is: 'colleague', leadId: known.id };
  const domain = from.split('@')[1]?.toLowerCase();
  if (!known && domain && lead?.domain && domain === lead.domain.toLowerCase()) return { is: 'new_colleague' };
  return { is: 'stranger' };
}

/**
 * A mail without a Message-ID, named by what its sender wrote (From, Date, Subject, text): the same mail
 * read from the rep's inbox and posted to /v1/inbound differs only in the headers each hop added, so both
 * name it alike (not by the message it was matched to, which a sender-and-time match can find
 * differently on each path). Without a Date two autoreplies could read the same, so such a mail is named
 * by where it was read (the caller's source id) or when.
 */
function contentId(mail: InboundMail): string | null {
  if (!mail.date) return null;
  const h = createHash('sha256');
  for (const part of [mail.from?.address ?? '', String(mail.date.getTime()), mail.subject, mail.text]) h.update(part).update('\0');
  return `h-${h.digest('hex').slice(0, 32)}`;
}

/** An unverifiable bounce or complaint changes nothing, but whoever follows `nurture logs` sees it. */
async function logUnverified(ctx: Context, msg: MessageRow, kind: 'bounce' | 'complaint', what: string | null, sourceId: string): Promise<void> {
  await logActivityOnce(ctx.db, [
    {
      leadId: msg.leadId,
      email: msg.to,
      sequenceId: msg.sequenceId,
      stepId: msg.stepId,
      kind: 'unverified',
      detail: `a ${kind} naming only this address${what ? ` (${what.slice(0, 200)})` : ''}: it quotes no message of ours and did not come to our envelope sender, so nobody is suppressed`,
      data: { kind, match: 'dsn_recipient', sourceId },
      receipt: `inbound-log:${sourceId}`,
    },
  ]);
}

/** A delay changes nothing, but whoever follows `nurture logs` sees the MTA is still trying. */
async function logDelay(ctx: Context, msg: MessageRow, bounce: Bounce, match: MatchMethod, sourceId: string): Promise<void> {
  await logActivityOnce(ctx.db, [
    {
      leadId: msg.leadId,
      email: msg.to,
      sequenceId: msg.sequenceId,
      stepId: msg.stepId,
      kind: 'delayed',
      detail: `delivery delayed${bounce.status ? ` (${bounce.status})` : ''}: ${bounce.diagnostic ?? 'the receiving side is still trying'}`,
      data: { messageRowId: msg.id, status: bounce.status, diagnostic: bounce.diagnostic, match, sourceId },
      receipt: `inbound-log:${sourceId}`,
    },
  ]);
}

const KEEP = ['from', 'to', 'subject', 'date', 'message-id', 'in-reply-to', 'auto-submitted', 'x-autoreply', 'precedence', 'x-auto-response-suppress', 'authentication-results'];
const pick = (h: Record<string, string>) => Object.fromEntries(KEEP.filter((k) => h[k] !== undefined).map((k) => [k, h[k]]));
