// Request bodies, read under two limits: each route's own cap, enforced as the bytes arrive (a declared
// Content-Length over it is refused before a byte is read), and one budget for every body in flight at
// once, so concurrent uploads can hold only so much memory (over it: 503 with Retry-After).
// A refused body is read and dropped rather than the connection reset, so the client gets our answer.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './respond.js';

const KiB = 1024;
const MiB = 1024 * KiB;

export interface BodyLimits {
  /** POST /v1/triggers. */
  triggers: number;
  /** POST /v1/inbound: one raw message. */
  inbound: number;
  /** POST /v1/providers/:name/{events,inbound}: a provider's batch or inbound post. */
  providers: number;
  /** Bodies no route reads much of: the one-click unsubscribe form, a fan-out request. */
  small: number;
  /** POST /v1/imports: a CSV of leads (a signed body is held whole to verify it; an upload streams). */
  imports: number;
  /** Every body being read or handled at the same moment, together. At least the largest cap above. */
  inFlight: number;
  /**
   * A refused body is read and dropped up to this many bytes, so the client reads the answer instead of
   * a reset; past it (or when the client was told not to send it) the connection is closed.
   */
  discard: number;
}

export const DEFAULT_BODY_LIMITS: BodyLimits = {
  triggers: 1 * MiB,
  inbound: 25 * MiB,
  providers: 30 * MiB,
  small: 64 * KiB,
  imports: 50 * MiB,
  inFlight: 64 * MiB,
  discard: 64 * MiB,
};

export function bodyLimits(given: Partial<BodyLimits> = {}): BodyLimits {
  const limits = { ...DEFAULT_BODY_LIMITS, ...given };
  const largest = Math.max(limits.triggers, limits.inbound, limits.providers, limits.small, limits.imports);
  if (limits.inFlight < largest) throw new Error(`the in-flight body budget (${limits.inFlight} bytes) must hold at least the largest body a route accepts (${largest} bytes)`);
  return limits;
}

/** Bytes held by bodies in flight, across requests. */
export class BodyBudget {
  used = 0;
  constructor(readonly max: number) {}

  take(bytes: number): boolean {
    if (this.used + bytes > this.max) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}

export const sizeText = (bytes: number) => (bytes >= MiB ? `${+(bytes / MiB).toFixed(1)} MiB` : bytes >= KiB ? `${+(bytes / KiB).toFixed(1)} KiB` : `${bytes} bytes`);

const expectsContinue = (req: IncomingMessage) => /100-continue/i.test(String(req.headers.expect ?? ''));
/** Requests whose client was told (100 Continue) to send the body. */
const continued = new WeakSet<IncomingMessage>();

function declaredLength(req: IncomingMessage): number | null {
  const v = req.headers['content-length'];
  if (v === undefined) return null;
  // Node's parser has already refused a malformed Content-Length; this is belt and braces.
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new HttpError(400, 'invalid_length', `Content-Length "${v}" is not a number of bytes`);
  return n;
}

const tooLarge = (req: IncomingMessage, limit: number) =>
  new HttpError(413, 'too_large', `the body is larger than ${sizeText(limit)}, the most ${req.method} ${new URL(req.url ?? '/', 'http://local').pathname} accepts`);
const busy = () => HttpError.retryable('busy', 'too many large bodies are being received at once; retry shortly', 5);

/**
 * Reads the whole body, at most `limit` bytes, holding its bytes against `budget` until the response is
 * done. The answer to a refused body is sent by the caller (sendError), and the rest of the body is
 * dropped as it arrives (see refuseBody).
 */
export function readBody(req: IncomingMessage, res: ServerResponse, limit: number, budget: BodyBudget): Promise<Buffer> {
  const declared = declaredLength(req);
  if (declared !== null && declared > limit) return Promise.reject(tooLarge(req, limit));
  let held = 0;
  const hold = (bytes: number) => {
    if (!budget.take(bytes)) return false;
    held += bytes;
    return true;
  };
  res.once('close', () => budget.give(held));
  // A declared body is held in full up front: refusing the 3rd of three concurrent uploads at once is
  // cheaper than reading a little of each and refusing all three half-way.
  if (declared !== null && !hold(declared)) return Promise.reject(busy());
  if (expectsContinue(req) && !continued.has(req)) {
    continued.add(req);
    res.writeContinue();
  }
  return new Promise<Buffer>((resolve, reject) => {
    // One buffer of the declared size, filled in place (no list of chunks to copy again at the end).
    const whole = declared !== null ? Buffer.allocUnsafe(declared) : null;
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (err: Error) => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      chunks.length = 0;
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      if (size + chunk.length > limit) return stop(tooLarge(req, limit));
      if (whole) {
        if (size + chunk.length > whole.length) return stop(tooLarge(req, declared!));
        chunk.copy(whole, size);
      } else {
        if (!hold(chunk.length)) return stop(busy());
        chunks.push(chunk);
      }
      size += chunk.length;
    };
    const onEnd = () => {
      req.off('data', onData).off('error', onError).off('close', onClose);
      if (whole) resolve(size === whole.length ? whole : whole.subarray(0, size));
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => stop(new HttpError(400, 'incomplete_body', `the body could not be read: ${err.message}`));
    const onClose = () => {
      if (!req.complete) stop(new HttpError(400, 'incomplete_body', 'the client closed the connection before sending the whole body'));
    };
    req.on('data', onData).once('end', onEnd).once('error', onError).once('close', onClose);
  });
}

/**
 * Before a refusal is sent: make sure the client can read it. A body we never asked for (Expect:
 * 100-continue) will not come, so the connection closes after the answer; otherwise the rest of the body
 * is read and dropped, up to `discard` bytes, and the connection stays usable. A body larger than that
 * is cut off (the client may then see a reset, after it had every chance to stop).
 */
export function refuseBody(req: IncomingMessage, res: ServerResponse, discard: number): void {
  if (req.complete || req.destroyed) return;
  if (expectsContinue(req) && !continued.has(req)) {
    res.setHeader('connection', 'close');
    return;
  }
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > discard) {
    res.setHeader('connection', 'close');
    res.once('finish', () => req.socket.destroy());
    return;
  }
  let seen = 0;
  req.removeAllListeners('data');
  req.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > discard) req.socket.destroy();
  });
  req.resume();
}
