// Pixel hits and link clicks: verify the signed token, classify person or machine, record the signal.
import { and, eq } from 'drizzle-orm';
import type { Context } from '../context.js';
import { messages, signals } from '../db/schema.js';
import { classifyClick } from '../engagement/clicks.js';
import { classifyOpen } from '../engagement/opens.js';
import { verifyToken } from '../mail/tracking.js';
import { recordSignals } from './recordSignals.js';

export interface Hit {
  token: string;
  userAgent: string | null;
  ip: string | null;
  method: string;
}

const second = (d: Date) => Math.floor(d.getTime() / 1000);

export async function recordOpen(ctx: Context, hit: Hit): Promise<boolean> {
  const id = verifyToken(ctx.settings.trackingSecret, 'track', hit.token);
  if (!id) return false;
  const [msg] = await ctx.db.select({ id: messages.id, sentAt: messages.sentAt }).from(messages).where(eq(messages.id, id));
  if (!msg) return false;
  const at = ctx.now();
  const c = classifyOpen({ userAgent: hit.userAgent, ip: hit.ip, method: hit.method, at, sentAt: msg.sentAt });
  await recordSignals(ctx, [{ sourceId: `open-${id}-${hit.ip ?? '-'}-${second(at)}`, kind: 'open', messageRowId: id, human: c.human, reason: c.reason, at, evidence: { userAgent: hit.userAgent, ip: hit.ip, method: hit.method } }]);
  return true;
}

/** The link's own URL, from the message row (never from the request: no open redirect), or null. */
export async function recordClick(ctx: Context, hit: Hit & { linkId: string }): Promise<string | null> {
  const id = verifyToken(ctx.settings.trackingSecret, 'track', hit.token);
  if (!id) return null;
  const [msg] = await ctx.db.select({ id: messages.id, sentAt: messages.sentAt, links: messages.links }).from(messages).where(eq(messages.id, id));
  const link = msg?.links.find((l) => l.id === hit.linkId);
  if (!msg || !link) return null;
  const at = ctx.now();
  const earlier = await ctx.db.select({ linkId: signals.linkId, at: signals.occurredAt }).from(signals).where(and(eq(signals.messageId, id), eq(signals.kind, 'click')));
  const c = classifyClick({
    userAgent: hit.userAgent,
    ip: hit.ip,
    method: hit.method,
    at,
    sentAt: msg.sentAt,
    linkId: link.id,
    honeypot: link.tag === 'honeypot',
    otherClicks: earlier.map((e) => ({ linkId: e.linkId ?? '', at: e.at })),
    linkCount: msg.links.length,
  });
  await recordSignals(ctx, [{ sourceId: `click-${id}-${link.id}-${hit.method}-${hit.ip ?? '-'}-${second(at)}`, kind: 'click', messageRowId: id, human: c.human, reason: c.reason, linkId: link.id, tag: link.tag, at, evidence: { userAgent: hit.userAgent, ip: hit.ip, method: hit.method, url: link.url } }]);
  return link.url;
}
