// People data over HTTP: imports (a signed CSV body, or the operator's upload, streamed), a person's
// export and erasure (operator only), and the person's own preference page (signed link; GET only shows).
import { Readable } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import busboy from 'busboy';
import type { Context } from '../context.js';
import { eraseLead } from '../usecases/eraseLead.js';
import { exportLead } from '../usecases/exportLead.js';
import { importLeads, type ImportResult } from '../usecases/importLeads.js';
import { choosePreference, parseChoice, preferencesFor } from '../usecases/preferences.js';
import { operatorOf } from './access.js';
import { readBody, sizeText, type BodyBudget, type BodyLimits } from './body.js';
import { clientIp } from './clientIp.js';
import { parseForm } from './forms.js';
import { preferencesPage } from './pages.js';
import { HttpError, sendJson } from './respond.js';

export interface PeopleDeps {
  ctx: Context;
  limits: BodyLimits;
  budget: BodyBudget;
  /** The server's Standard Webhooks check (signature over the raw bytes, redeliveries answered once). */
  signed(limit: number, work: (body: Buffer) => Promise<unknown>): Promise<void>;
}

const LEAD_PATH = /^\/v1\/leads\/([^/]+)(\/export)?$/;
const PREFS_PATH = /^\/p\/([\w.-]+)$/;

export function isPeoplePath(path: string, method: string): boolean {
  if (path === '/v1/imports') return method === 'POST';
  const lead = LEAD_PATH.exec(path);
  if (lead) return lead[2] ? method === 'GET' : method === 'DELETE';
  return PREFS_PATH.test(path) && (method === 'GET' || method === 'POST');
}

export async function peopleRoute(d: PeopleDeps, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const { ctx } = d;
  const path = url.pathname;
  let m: RegExpExecArray | null;
  if ((m = PREFS_PATH.exec(path))) {
    const token = m[1]!;
    if (req.method === 'POST') {
      const form = await parseForm(await readBody(req, res, d.limits.small, d.budget), String(req.headers['content-type'] ?? 'application/x-www-form-urlencoded'));
      const done = await choosePreference(ctx, token, parseChoice(form), { ip: clientIp(req, ctx.settings.trustedProxies), userAgent: req.headers['user-agent'] ?? null });
      if (!done) throw new HttpError(404, 'unknown_link', 'this preferences link is not valid');
      return html(res, preferencesPage({ ...done, action: path, saved: true }));
    }
    const prefs = await preferencesFor(ctx, token);
    if (!prefs) throw new HttpError(404, 'unknown_link', 'this preferences link is not valid');
    return html(res, preferencesPage({ ...prefs, action: path, saved: false }));
  }
  if (path === '/v1/imports') {
    const opts = { dryRun: flag(url, 'dryRun', false), enroll: flag(url, 'enroll', true) };
    const operator = operatorOf(req, ctx.settings);
    if (operator && /^multipart\/form-data/i.test(String(req.headers['content-type'] ?? ''))) {
      return sendJson(res, 200, await importUpload(d, req, { ...opts, actor: `operator (${operator.via})` }));
    }
    return d.signed(d.limits.imports, (body) => importLeads(ctx, Readable.from([body]), { ...opts, actor: 'api (signed)' }));
  }
  m = LEAD_PATH.exec(path)!;
  if (!operatorOf(req, ctx.settings)) throw new HttpError(403, 'forbidden', "a person's data is for the operator: from this machine, or with the admin token as a Bearer token");
  let email: string;
  try {
    email = decodeURIComponent(m[1]!);
  } catch {
    throw new HttpError(400, 'invalid_path', 'the email in this URL is not valid percent-encoding', 'email');
  }
  if (m[2]) {
    res.setHeader('content-disposition', 'attachment; filename="lead-export.json"');
    return sendJson(res, 200, await exportLead(ctx, email));
  }
  return sendJson(res, 200, await eraseLead(ctx, email, { actor: `operator (${operatorOf(req, ctx.settings)!.via})` }));
}

function flag(url: URL, name: string, fallback: boolean): boolean {
  const v = url.searchParams.get(name);
  if (v === null) return fallback;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new HttpError(400, 'invalid_query', `${name} is true or false`, name);
}

/** The operator's upload: the file part is streamed into the import as it arrives, never held whole. */
function importUpload(d: PeopleDeps, req: IncomingMessage, opts: { dryRun: boolean; enroll: boolean; actor: string }): Promise<ImportResult> {
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { files: 1, fileSize: d.limits.imports } });
    } catch (err) {
      return reject(new HttpError(400, 'invalid_form', `the upload cannot be read: ${(err as Error).message}`));
    }
    let started = false;
    bb.on('file', (_name, stream) => {
      started = true;
      stream.on('limit', () => stream.destroy(new HttpError(413, 'too_large', `the file is larger than ${sizeText(d.limits.imports)}, the most POST /v1/imports accepts`)));
      importLeads(d.ctx, stream, opts).then(resolve, (err) => reject(err instanceof HttpError ? err : (err as Error).cause instanceof HttpError ? (err as Error).cause : err));
    });
    bb.on('close', () => {
      if (!started) reject(new HttpError(400, 'invalid_form', 'attach the CSV as a file field'));
    });
    bb.on('error', (err: Error) => reject(new HttpError(400, 'invalid_form', `the upload cannot be read: ${err.message}`)));
    req.pipe(bb);
  });
}

function html(res: ServerResponse, body: string): void {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
  res.end(body);
}
