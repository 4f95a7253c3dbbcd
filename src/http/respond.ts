// Error bodies are JSON with a stable code, a message a person can act on and, where known, the field.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { UseCaseError } from '../usecases/errors.js';

export class HttpError extends Error {
  /** Response headers to send with the error, e.g. Retry-After on a 503 the caller should retry. */
  headers: Record<string, string> = {};

  constructor(readonly status: number, readonly code: string, message: string, readonly field?: string, readonly fields?: { field: string; message: string }[]) {
    super(message);
  }

  /** A 503 the caller should retry after `seconds`: a dependency of ours is away, not a fault in the request. */
  static retryable(code: string, message: string, seconds: number): HttpError {
    const err = new HttpError(503, code, message);
    err.headers = { 'retry-after': String(seconds) };
    return err;
  }

  static fromZod(err: z.ZodError): HttpError {
    const fields = err.issues.map((i) => ({ field: i.path.join('.') || '(body)', message: i.message }));
    return new HttpError(400, 'invalid_body', fields.map((f) => `${f.field}: ${f.message}`).join('; '), fields[0]?.field, fields);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

const DB_DOWN = new Set(['ECONNREFUSED', 'ECONNRESET', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT', '57P01', '57P03']);

export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) return void res.end();
  if (err instanceof UseCaseError) return sendError(res, new HttpError(err.status, err.code, err.message, err.field));
  if (err instanceof HttpError) {
    return sendJson(res, err.status, { error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}), ...(err.fields ? { fields: err.fields } : {}) } }, err.headers);
  }
  const code = (err as { code?: string }).code;
  if (code && DB_DOWN.has(code)) {
    // The database is away (restart, failover): tell the caller to come back rather than fail.
    return sendJson(res, 503, { error: { code: 'unavailable', message: 'the database is unavailable; retry shortly' } }, { 'retry-after': '5' });
  }
  console.error('[http] unexpected error', err);
  sendJson(res, 500, { error: { code: 'internal', message: 'internal error' } });
}

export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(413, 'too_large', `body larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
