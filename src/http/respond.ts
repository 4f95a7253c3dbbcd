// Error bodies are JSON with a stable code, a message a person can act on and, where known, the field.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { loggableError } from '../db/client.js';
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

/** Where a request went, for a log line: method and path only (the query may name a lead). */
const requestLine = (req?: IncomingMessage) => (req ? `${req.method ?? '?'} ${(req.url ?? '/').split('?')[0]!.slice(0, 200)}` : 'request');

/**
 * Answers a failed request. A refusal (a 4xx the caller can act on, or a 503 to retry) is logged once,
 * as one line; only an error nobody anticipated is logged as unexpected, with its stack, and a database
 * error without its parameters (see loggableError).
 */
export function sendError(res: ServerResponse, err: unknown, req?: IncomingMessage): void {
  if (err instanceof UseCaseError) return sendError(res, new HttpError(err.status, err.code, err.message, err.field), req);
  if (err instanceof HttpError) {
    console.warn(`[http] ${requestLine(req)} refused: ${err.status} ${err.code}${err.field ? ` (${err.field})` : ''}: ${err.message}`);
    if (res.headersSent) return void res.end();
    return sendJson(res, err.status, { error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}), ...(err.fields ? { fields: err.fields } : {}) } }, err.headers);
  }
  const e = err as { code?: string; cause?: { code?: string } } | null;
  const code = e?.code ?? e?.cause?.code;
  if (code && DB_DOWN.has(code)) {
    console.warn(`[http] ${requestLine(req)}: the database is unavailable (${code}); answered 503`);
    if (res.headersSent) return void res.end();
    // The database is away (restart, failover): tell the caller to come back rather than fail.
    return sendJson(res, 503, { error: { code: 'unavailable', message: 'the database is unavailable; retry shortly' } }, { 'retry-after': '5' });
  }
  console.error(`[http] unexpected error on ${requestLine(req)}:`, loggableError(err));
  if (res.headersSent) return void res.end();
  sendJson(res, 500, { error: { code: 'internal', message: 'internal error' } });
}
