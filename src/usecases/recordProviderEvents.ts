// Events from an email service provider's webhook (already verified and parsed) recorded as signals:
// matched to our message by its Message-ID where the provider echoes it, else to the lead by address.
import { inArray } from 'drizzle-orm';
import type { Context } from '../context.js';
import { logActivity } from '../db/activity.js';
import { leads, messages } from '../db/schema.js';
import { classifyClick } from '../engagement/clicks.js';
import { classifyOpen } from '../engagement/opens.js';
import type { ProviderEvent } from '../engagement/providers/index.js';
import { recordSignals, type SignalInput } from './recordSignals.js';

export async function recordProviderEvents(ctx: Context, events: ProviderEvent[]): Promise<{ recorded: number; duplicates: number; unmatched: number; logged: number }> {
  const ids = [...new Set(events.map((e) => e.messageId).filter((x): x is string => !!x))];
  const emails = [...new Set(events.map((e) => e.email).filter((x): x is string => !!x))];
  const [msgRows, leadRows] = await Promise.all([
    ids.length ? ctx.db.select({ id: messages.id, messageId: messages.messageId, leadId: messages.leadId, sentAt: messages.sentAt }).from(messages).where(inArray(messages.messageId, ids)) : [],
    emails.length ? ctx.db.select({ id: leads.id, email: leads.email }).from(leads).where(inArray(leads.email, emails)) : [],
  ]);
  const byMessageId = new Map(msgRows.map((m) => [m.messageId, m]));
  const byEmail = new Map(leadRows.map((l) => [l.email, l.id]));

  const signals: SignalInput[] = [];
  const notes: Parameters<typeof logActivity>[1] = [];
  let unmatched = 0;
  for (const e of events) {
    const msg = e.messageId ? byMessageId.get(e.messageId) : undefined;
    const leadId = msg?.leadId ?? (e.email ? byEmail.get(e.email) : undefined);
    if (!leadId) {
      unmatched++;
      continue;
    }
    const base = { sourceId: `${e.provider}-${e.sourceId}`, messageRowId: msg?.id ?? null, leadId, at: e.at, evidence: { provider: e.provider, providerMessageId: e.providerMessageId, raw: e.raw } };
    const hit = { userAgent: e.userAgent ?? null, ip: e.ip ?? null, method: 'GET', at: e.at, sentAt: msg?.sentAt ?? null };
    switch (e.kind) {
      case 'open': {
        const c = classifyOpen(hit);
        signals.push({ ...base, kind: 'open', human: c.human, reason: c.reason });
        break;
      }
      case 'click': {
        const c = classifyClick({ ...hit, linkId: e.url ?? '', honeypot: false, otherClicks: [], linkCount: 0 });
        signals.push({ ...base, kind: 'click', human: c.human, reason: c.reason, evidence: { ...base.evidence, url: e.url } });
        break;
      }
      case 'bounce':
        signals.push({ ...base, kind: 'bounce', human: false, reason: e.bounce?.permanent ? 'hard_bounce' : 'soft_bounce', evidence: { ...base.evidence, smtp: e.bounce?.diagnostic, status: e.bounce?.status } });
        break;
      case 'complaint':
        signals.push({ ...base, kind: 'complaint', human: true, reason: `${e.provider}_complaint` });
        break;
      case 'unsubscribe':
        signals.push({ ...base, kind: 'unsubscribe', human: true, reason: `${e.provider}_unsubscribe` });
        break;
      default:
        // delivered, deferred, dropped: worth seeing in the log, not engagement.
        notes.push({ leadId, email: e.email, kind: `esp_${e.kind}`, detail: `${e.provider}: ${e.kind}${e.bounce?.diagnostic ? ` (${e.bounce.diagnostic})` : ''}`, at: e.at });
    }
  }
  const r = await recordSignals(ctx, signals);
  await logActivity(ctx.db, notes);
  return { ...r, unmatched, logged: notes.length };
}
