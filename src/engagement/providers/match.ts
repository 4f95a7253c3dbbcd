/**
 * Which of our messages a provider event is about. Pure: the caller loads the candidate messages.
 *
 * In order of how exactly each names one message: our row id from the custom argument we set, the
 * provider's own message id (stored at send time from the relay's reply, or at the first event that
 * named the message another way), our Message-ID where the provider echoes it. Only when none of these
 * finds a message does the event fall back to the address, and then it names a lead, not a message.
 * A message whose recipient isn't the event's recipient is never the match: a provider's event is about
 * one recipient, and the person it moves must be the one the message went to.
 */
import { providerMessageKey, type ProviderEvent } from './common.js';

export type MatchMethod = 'custom_arg' | 'provider_message_id' | 'message_id' | 'address';

export interface CandidateMessage {
  id: string;
  messageId: string;
  providerMessageId: string | null;
  toAddress: string;
}

export interface Candidates<M extends CandidateMessage> {
  byRowId: Map<string, M>;
  byProviderKey: Map<string, M>;
  byMessageId: Map<string, M>;
}

export function indexCandidates<M extends CandidateMessage>(rows: M[]): Candidates<M> {
  const byProviderKey = new Map<string, M>();
  for (const m of rows) if (m.providerMessageId) byProviderKey.set(m.providerMessageId, m);
  return { byRowId: new Map(rows.map((m) => [m.id, m])), byProviderKey, byMessageId: new Map(rows.map((m) => [m.messageId, m])) };
}

export type EventMatch<M> = { message: M; method: Exclude<MatchMethod, 'address'> } | { message: null; method: 'address' | null };

export function matchEvent<M extends CandidateMessage>(e: ProviderEvent, c: Candidates<M>): EventMatch<M> {
  const key = providerMessageKey(e.provider, e.providerMessageId);
  const tries: [M | undefined, Exclude<MatchMethod, 'address'>][] = [
    [e.messageRowId ? c.byRowId.get(e.messageRowId) : undefined, 'custom_arg'],
    [key ? c.byProviderKey.get(key) : undefined, 'provider_message_id'],
    [e.messageId ? c.byMessageId.get(e.messageId) : undefined, 'message_id'],
  ];
  for (const [message, method] of tries) {
    if (message && sameRecipient(e.email, message.toAddress)) return { message, method };
  }
  return { message: null, method: e.email ? 'address' : null };
}

function sameRecipient(eventEmail: string | null, toAddress: string): boolean {
  // Some events name no recipient (an SES open of a multi-recipient message): the id alone decides.
  return !eventEmail || eventEmail.toLowerCase() === toAddress.trim().toLowerCase();
}

/** The keys to look candidates up by, for a batch of events. */
export function lookupKeys(events: ProviderEvent[]): { rowIds: string[]; providerKeys: string[]; messageIds: string[]; emails: string[] } {
  const uniq = (xs: (string | null | undefined)[]) => [...new Set(xs.filter((x): x is string => !!x))];
  return {
    rowIds: uniq(events.map((e) => e.messageRowId)),
    providerKeys: uniq(events.map((e) => providerMessageKey(e.provider, e.providerMessageId))),
    messageIds: uniq(events.map((e) => e.messageId)),
    emails: uniq(events.map((e) => e.email)),
  };
}
