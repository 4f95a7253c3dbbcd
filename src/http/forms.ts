// Form bodies as inbound-mail providers post them (multipart/form-data or urlencoded) → text fields.
// A form that cannot be read, or has more parts than any provider sends, is the sender's error (400/422).
import { Readable } from 'node:stream';
import busboy from 'busboy';
import { HttpError } from './respond.js';

/** More than any provider's inbound post carries (SendGrid's Inbound Parse sends a dozen fields and the attachments). */
export const FORM_LIMITS = { fields: 200, files: 100 } as const;

export async function parseForm(body: Buffer, contentType: string): Promise<Record<string, string>> {
  // Built from entries, so a field named __proto__ is a field like any other.
  if (/^application\/x-www-form-urlencoded/i.test(contentType)) return Object.fromEntries(new URLSearchParams(body.toString('utf8')));
  const fields: [string, string][] = [];
  await new Promise<void>((resolve, reject) => {
    const refuse = (what: string) => reject(new HttpError(422, 'form_too_complex', `the form has more than ${what}; no provider sends that many`));
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: { 'content-type': contentType }, limits: { fieldSize: Math.max(body.length, 1), fields: FORM_LIMITS.fields, files: FORM_LIMITS.files, parts: FORM_LIMITS.fields + FORM_LIMITS.files } });
    } catch (err) {
      return reject(new HttpError(400, 'invalid_form', `the form cannot be read: ${(err as Error).message}`));
    }
    bb.on('field', (name, value) => fields.push([name, value]));
    // Attachments are not needed to recognise a reply: drain them.
    bb.on('file', (_name, stream) => stream.resume());
    bb.on('fieldsLimit', () => refuse(`${FORM_LIMITS.fields} fields`));
    bb.on('filesLimit', () => refuse(`${FORM_LIMITS.files} files`));
    bb.on('partsLimit', () => refuse(`${FORM_LIMITS.fields + FORM_LIMITS.files} parts`));
    bb.on('close', () => resolve());
    bb.on('error', (err: Error) => reject(new HttpError(400, 'invalid_form', `the form cannot be read: ${err.message}`)));
    Readable.from([body]).pipe(bb);
  });
  return Object.fromEntries(fields);
}
