// Signs a JSON body (or a raw email) with the Standard Webhooks scheme and POSTs it to nurture.
//   npx tsx scripts/send-webhook.ts examples/lead.json            → POST /v1/triggers
//   npx tsx scripts/send-webhook.ts --inbound reply.eml           → POST /v1/inbound
// The secret and URL come from WEBHOOK_SECRET / NURTURE_URL, else from the running dev install (.nurture/).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { signedHeaders } from '../src/http/signing.js';
import { readRuntimeFile } from '../src/cli/runtimeFile.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    inbound: { type: 'boolean', default: false },
    url: { type: 'string' },
    id: { type: 'string' },
  },
});
const file = positionals[0];
if (!file) {
  console.error('usage: send-webhook.ts [--inbound] [--url http://host:port] [--id webhook-id] FILE (- for stdin)');
  process.exit(2);
}
const dataDir = process.env.NURTURE_DATA_DIR ?? '.nurture';
const secret = process.env.WEBHOOK_SECRET ?? (JSON.parse(readFileSync(join(dataDir, 'secrets.json'), 'utf8')) as { webhookSecret: string }).webhookSecret;
const base = values.url ?? process.env.NURTURE_URL ?? readRuntimeFile(dataDir)?.apiUrl ?? 'http://127.0.0.1:8787';
// Bytes as they are: mail in Latin-1 (or any 8-bit charset) is signed and sent unchanged, never re-encoded.
const body = readFileSync(file === '-' ? 0 : file);
const path = values.inbound ? '/v1/inbound' : '/v1/triggers';
const res = await fetch(`${base}${path}`, {
  method: 'POST',
  headers: { 'content-type': values.inbound ? 'message/rfc822' : 'application/json', ...signedHeaders(secret, body, values.id ? { id: values.id } : {}) },
  body: new Uint8Array(body),
});
console.log(`${res.status} ${res.statusText}`);
console.log(JSON.stringify(JSON.parse((await res.text()) || 'null'), null, 2));
process.exit(res.ok ? 0 : 1);
