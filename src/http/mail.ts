// Inbound mail that cannot be read is the sender's problem, not ours: a 422 that says why, never a 500
// (a provider retries a 5xx for days, and the same message would fail the same way each time).
import { HttpError } from './respond.js';

/**
 * The MIME parser stops at 1,000 parts (however deeply nested) and at 1 MB of headers for one part, so a
 * message built to exhaust it costs milliseconds: those limits become 422s naming what is wrong.
 */
export const MIME_LIMITS = { parts: 1000, headerBytes: 1024 * 1024 } as const;

export async function readableMail<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    if (e?.code === 'EMAXLEN') {
      const message = String(e.message);
      if (/child nodes/i.test(message)) throw new HttpError(422, 'mime_too_complex', `the message has more than ${MIME_LIMITS.parts} MIME parts, or parts nested that deep; nurture reads at most ${MIME_LIMITS.parts}`);
      if (/header size/i.test(message)) throw new HttpError(422, 'mime_header_too_large', `a header section of the message (or of one of its parts) is larger than ${MIME_LIMITS.headerBytes / 1024 / 1024} MB`);
      throw new HttpError(422, 'mime_unreadable', `the message cannot be read: ${message}`);
    }
    throw err;
  }
}
