// RFC 8058 one-click unsubscribe (POST) and the page's button. A GET never unsubscribes anyone:
// mail security scanners follow every link in a message.
import { eq } from 'drizzle-orm';
import type { Context } from '../context.js';
import { messages } from '../db/schema.js';
import { verifyToken } from '../mail/tracking.js';
import { recordSignals } from './recordSignals.js';

export async function unsubscribe(ctx: Context, token: string, via: 'one_click' | 'page'): Promise<{ email: string } | null> {
  const id = verifyToken(ctx.settings.trackingSecret, 'unsubscribe', token);
  if (!id) return null;
  const [msg] = await ctx.db.select({ id: messages.id, email: messages.toAddress }).from(messages).where(eq(messages.id, id));
  if (!msg) return null;
  await recordSignals(ctx, [{ sourceId: `unsubscribe-${id}`, kind: 'unsubscribe', messageRowId: id, human: true, reason: via, at: ctx.now() }]);
  return { email: msg.email };
}

export async function unsubscribeTarget(ctx: Context, token: string): Promise<{ email: string } | null> {
  const id = verifyToken(ctx.settings.trackingSecret, 'unsubscribe', token);
  if (!id) return null;
  const [msg] = await ctx.db.select({ email: messages.toAddress }).from(messages).where(eq(messages.id, id));
  return msg ? { email: msg.email } : null;
}
