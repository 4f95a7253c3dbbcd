// Events from an email service provider's webhook (already verified and parsed), recorded against the
// exact message they name (custom argument → provider message id → our Message-ID), else against the
// lead by address, with how they were matched kept in the evidence. Engagement and suppression go
// through recordSignals (idempotent on the event's id); deliveries, deferrals and drops that suppress
// nothing are log lines, each written once however often the provider redelivers the event.
import { inArray } from 'drizzle-orm';
import type { Context } from '../context.js';
import type { ActivityEntry } from '../db/activity.js';
import { logProviderNotesOnce, messagesForEvents, rememberProviderMessageIds, type MessageForEvent } from '../db/providerEvents.js';
import { leads } from '../db/schema.js';
import { classifyClick } from '../engagement/clicks.js';
import { classifyOpen } from '../engagement/opens.js';
import { indexCandidates, lookupKeys, matchEvent, providerMessageKey, type MatchMethod, type ProviderEvent } from '../engagement/providers/index.js';
import { recordSignals, type SignalInput } from './recordSignals.js';

export interface ProviderEventsResult {
  /** Signals newly recorded (a redelivered event records none). */
  recorded: number;
  duplicates: number;
  /** Events naming neither a message nor a lead of ours. */
  unmatched: number;
  /** Log lines newly written for events that record no signal. */
  logged: number;
  /** How each event was matched. */
  matched: Record<MatchMethod, number>;
}

export async function recordProviderEvents(ctx: Context, events: ProviderEvent[]): Promise<ProviderEventsResult> {
  const keys = lookupKeys(events);
  const [msgRows, leadRows] = await Promise.all([
    messagesForEvents(ctx.db, keys),
    keys.emails.length ? ctx.db.select({ id: leads.id, email: leads.email }).from(leads).where(inArray(leads.email, keys.emails)) : [],
  ]);
  const candidates = indexCandidates(msgRows);
  const byEmail = new Map(leadRows.map((l) => [l.email, l.id]));

  const signals: SignalInput[] = [];
  const notes: (ActivityEntry & { sourceId: string })[] = [];
  const learnt = new Map<string, string>();
  const matched: Record<MatchMethod, number> = { custom_arg: 0, provider_message_id: 0, message_id: 0, address: 0 };
  let unmatched = 0;
  for (const e of events) {
    const m = matchEvent(e, candidates);
    const msg: MessageForEvent | null = m.message;
    const leadId = msg?.leadId ?? (e.email ? byEmail.get(e.email) : undefined);
    if (!leadId || !m.method) {
      unmatched++;
      continue;
    }
    matched[m.method]++;
    // The first event that names a message by our id teaches us the provider's id for it.
    const key = providerMessageKey(e.provider, e.providerMessageId);
    if (msg && key && !msg.providerMessageId && !learnt.has(msg.id)) learnt.set(msg.id, key);

    const sourceId = `${e.provider}-${e.sourceId}`;
    const evidence = { provider: e.provider, providerMessageId: e.providerMessageId, match: m.method, raw: e.raw };
    const base = { sourceId, messageRowId: msg?.id ?? null, leadId, at: e.at, evidence };
    // A provider reports the hit, not the request: no headers, and no view of the message's other hits.
    const hit = { userAgent: e.userAgent ?? null, ip: e.ip ?? null, method: 'GET', headers: {}, at: e.at, sentAt: msg?.sentAt ?? null, otherHits: [], linkCount: 0 };
    switch (e.kind) {
      case 'open': {
        // The provider's own machine-open flag (Apple's proxy) outranks what the user agent suggests.
        const c = e.machineOpen ? { human: false, reason: 'apple_mpp' } : classifyOpen(hit);
        signals.push({ ...base, kind: 'open', human: c.human, reason: c.reason, evidence: { ...evidence, ...(e.machineOpen ? { providerMachineOpen: true } : {}), ...('evidence' in c && c.evidence ? { classification: c.evidence } : {}) } });
        break;
      }
      case 'click': {
        const c = classifyClick({ ...hit, linkId: e.url ?? '', honeypot: false });
        signals.push({ ...base, kind: 'click', human: c.human, reason: c.reason, evidence: { ...evidence, url: e.url, ...(c.evidence ? { classification: c.evidence } : {}) } });
        break;
      }
      case 'bounce':
        signals.push({ ...base, kind: 'bounce', human: false, reason: e.bounce?.permanent ? 'hard_bounce' : 'soft_bounce', evidence: { ...evidence, smtp: e.bounce?.diagnostic, status: e.bounce?.status } });
        break;
      case 'complaint':
        signals.push({ ...base, kind: 'complaint', human: true, reason: `${e.provider}_complaint` });
        break;
      case 'unsubscribe':
        signals.push({ ...base, kind: 'unsubscribe', human: true, reason: `${e.provider}_unsubscribe` });
        break;
      case 'dropped':
        if (e.suppresses) {
          // The provider refused to send because the address is on its bounce, unsubscribe or spam-report
          // list: that earlier event happened, so it suppresses here as the event itself would have.
          signals.push(droppedSignal(e, base, e.suppresses));
          break;
        }
        notes.push(note(e, msg, leadId, sourceId, m.method));
        break;
      default:
        // delivered, deferred: worth seeing in the log, not engagement.
        notes.push(note(e, msg, leadId, sourceId, m.method));
    }
  }
  if (learnt.size) await rememberProviderMessageIds(ctx.db, [...learnt].map(([messageRowId, providerMessageId]) => ({ messageRowId, providerMessageId })));
  const r = await recordSignals(ctx, signals);
  const logged = await logProviderNotesOnce(ctx.db, notes);
  return { recorded: r.recorded, duplicates: r.duplicates + (notes.length - logged), unmatched, logged, matched };
}

type Base = Pick<SignalInput, 'sourceId' | 'messageRowId' | 'leadId' | 'at'> & { evidence: Record<string, unknown> };

function droppedSignal(e: ProviderEvent, base: Base, suppresses: NonNullable<ProviderEvent['suppresses']>): SignalInput {
  const why = e.bounce?.diagnostic ?? 'suppressed address';
  const evidence = { ...base.evidence, dropped: why };
  switch (suppresses) {
    case 'bounce':
      // recordSignals suppresses on reason hard_bounce; the drop's reason is what the log shows.
      return { ...base, kind: 'bounce', human: false, reason: 'hard_bounce', evidence: { ...evidence, smtp: `${e.provider} dropped: ${why}` } };
    case 'unsubscribe':
      return { ...base, kind: 'unsubscribe', human: true, reason: `${e.provider}_dropped_unsubscribed`, evidence };
    case 'complaint':
      return { ...base, kind: 'complaint', human: true, reason: `${e.provider}_dropped_spam_reported`, evidence };
  }
}

function note(e: ProviderEvent, msg: MessageForEvent | null, leadId: string, sourceId: string, match: MatchMethod): ActivityEntry & { sourceId: string } {
  const why = e.bounce?.diagnostic ? ` (${e.bounce.diagnostic})` : '';
  return {
    sourceId,
    leadId,
    email: e.email,
    sequenceId: msg?.sequenceId ?? null,
    stepId: msg?.stepId ?? null,
    kind: `esp_${e.kind}`,
    detail: `${e.provider}: ${e.kind}${why}`,
    data: { sourceId, provider: e.provider, providerMessageId: e.providerMessageId, messageRowId: msg?.id ?? null, match },
    at: e.at,
  };
}
