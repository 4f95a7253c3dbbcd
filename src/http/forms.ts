// Form bodies as inbound-mail providers post them (multipart/form-data or urlencoded) → text fields.
import { Readable } from 'node:stream';
import busboy from 'busboy';

export async function parseForm(body: Buffer, contentType: string): Promise<Record<string, string>> {
  if (/^application\/x-www-form-urlencoded/i.test(contentType)) return Object.fromEntries(new URLSearchParams(body.toString('utf8')));
  const fields: Record<string, string> = {};
  await new Promise<void>((resolve, reject) => {
    const bb = busboy({ headers: { 'content-type': contentType }, limits: { fieldSize: 30 * 1024 * 1024, files: 20 } });
    bb.on('field', (name, value) => {
      fields[name] = value;
    });
    // Attachments are not needed to recognise a reply: drain them.
    bb.on('file', (_name, stream) => stream.resume());
    bb.on('close', () => resolve());
    bb.on('error', reject);
    Readable.from(body).pipe(bb);
  });
  return fields;
}
