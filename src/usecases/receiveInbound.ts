// An inbound email (a reply, an out-of-office, a bounce notice) matched to the message it answers.
import { eq, inArray, or } from 'drizzle-orm';
import { messageFromReplyAddress } from '../mail/tracking.js';
import type { Context } from '../context.js';
import { messages } from '../db/schema.js';
import { bounceOf, inboundKind, parseInboundMail } from '../engagement/inbound.js';
import { recordSignals } from './recordSignals.js';

export type InboundResult =
  | { matched: false; reason: string }
  | { matched: true; kind: string; messageId: string; recorded: boolean };

export async function receiveInbound(ctx: Context, raw: string | Buffer): Promise<InboundResult> {
  const mail = await parseInboundMail(raw);
  const kind = inboundKind(mail);
  const bounce = kind === 'bounce' || kind === 'delayed' ? bounceOf(mail) : null;
  // A reply names what it answers in In-Reply-To and References (RFC 5322 §3.6.4); a bounce in its returned headers.
  const candidates = [...new Set([bounce?.originalMessageId, mail.inReplyTo, ...[...mail.references].reverse()].filter((x): x is string => !!x))];
  // Failing that, a reply sent to our per-message reply address (some clients drop In-Reply-To).
  const recipients = [...mail.to, ...['cc', 'delivered-to', 'x-original-to'].flatMap((h) => (mail.headers[h] ?? '').split(','))];
  const byToken = messageFromReplyAddress(ctx.settings.trackingSecret, recipients);
  if (!candidates.length && !byToken) return { matched: false, reason: 'no In-Reply-To, References or reply address of ours' };
  const rows = await ctx.db
    .select({ id: messages.id, messageId: messages.messageId, to: messages.toAddress })
    .from(messages)
    .where(byToken ? or(inArray(messages.messageId, candidates.length ? candidates : ['-']), eq(messages.id, byToken)) : inArray(messages.messageId, candidates));
  const msg = candidates.map((c) => rows.find((r) => r.messageId === c)).find(Boolean) ?? rows.find((r) => r.id === byToken);
  if (!msg) return { matched: false, reason: 'does not answer any message nurture sent' };
  if (kind === 'delayed') return { matched: true, kind, messageId: msg.messageId, recorded: false };

  const sourceId = `inbound-${mail.messageId ?? `${msg.id}-${mail.date?.getTime() ?? ctx.now().getTime()}`}`;
  const at = mail.date && mail.date <= ctx.now() ? mail.date : ctx.now();
  const evidence = { from: mail.from?.address ?? null, subject: mail.subject, newText: mail.newText.slice(0, 4000), headers: pick(mail.headers) };
  const signal =
    kind === 'bounce'
      ? { kind: 'bounce' as const, human: false, reason: bounce!.status?.startsWith('5.1.') ? 'hard_bounce' : 'soft_bounce', evidence: { ...evidence, smtp: bounce!.diagnostic, status: bounce!.status } }
      : kind === 'auto_reply'
        ? { kind: 'auto_reply' as const, human: false, reason: mail.autoReply.reason ?? 'auto_reply', returnDate: mail.autoReply.returnDate, evidence }
        : { kind: 'reply' as const, human: true, reason: 'reply', evidence };
  const r = await recordSignals(ctx, [{ sourceId, messageRowId: msg.id, at, ...signal }]);
  if (kind === 'bounce') await ctx.db.update(messages).set({ status: 'bounced', error: bounce!.diagnostic }).where(eq(messages.id, msg.id));
  return { matched: true, kind, messageId: msg.messageId, recorded: r.recorded > 0 };
}

const KEEP = ['from', 'to', 'subject', 'date', 'message-id', 'in-reply-to', 'auto-submitted', 'x-autoreply', 'precedence', 'x-auto-response-suppress'];
const pick = (h: Record<string, string>) => Object.fromEntries(KEEP.filter((k) => h[k] !== undefined).map((k) => [k, h[k]]));
