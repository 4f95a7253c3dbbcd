// Who a message is from and who signs it: one decision, used where the Message-ID is minted (the row is
// created), where the message is rendered and sent, and by the preview. Pure: config and lead data in.
import type { Funnel, Sequence } from '../config/schema.js';
import type { Address } from './message.js';

/** The person (or brand) a message is from, as the signature shows them. */
export interface Signer {
  name: string;
  email: string;
  title: string | null;
  phone: string | null;
  /** Where replies go when it isn't `email` (a brand sender's replyTo). */
  replyTo: string | null;
}

export interface MessageSender {
  from: Address;
  replyTo: string | null;
  /** One-to-one mail is signed by the lead's rep; segmented mail by its brand sender, never by the rep. */
  signer: Signer;
}

export interface OwnerLike {
  name: string;
  email: string;
  title?: string | null;
  phone?: string | null;
}

/**
 * The sender of one email step: the step's `sender`, else the sequence's, else the lead's owner for
 * one-to-one mail; a brand sender (the named one, else the first listed) otherwise, and for one-to-one
 * mail to a lead without an owner. Null when the funnel has no brand sender to fall back on.
 */
export function senderFor(
  funnel: Pick<Funnel, 'senders'>,
  seq: Pick<Sequence, 'mode' | 'sender'>,
  step: { sender?: string | undefined },
  owner: OwnerLike | null,
): MessageSender | null {
  const key = step.sender ?? seq.sender ?? (seq.mode === 'one_to_one' ? 'owner' : undefined);
  if (key === 'owner' && owner) {
    return {
      from: { name: owner.name, email: owner.email },
      replyTo: null,
      signer: { name: owner.name, email: owner.email, title: owner.title ?? null, phone: owner.phone ?? null, replyTo: null },
    };
  }
  // Only configured names: an index by a key like "constructor" would find something every object has.
  const named = key && key !== 'owner' && Object.hasOwn(funnel.senders, key) ? funnel.senders[key] : undefined;
  const brand = named ?? Object.values(funnel.senders)[0];
  if (!brand) return null;
  return {
    from: { name: brand.name, email: brand.email },
    replyTo: brand.replyTo ?? null,
    signer: { name: brand.name, email: brand.email, title: null, phone: null, replyTo: brand.replyTo ?? null },
  };
}
