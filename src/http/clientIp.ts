// Behind a proxy every request seems to come from the proxy: believe X-Forwarded-For only from proxies
// the operator named, and take the last address a trusted hop did not add.
import type { IncomingMessage } from 'node:http';

export function clientIp(req: IncomingMessage, trustedProxies: string[]): string | null {
  const peer = normalise(req.socket.remoteAddress ?? null);
  if (!peer || !trustedProxies.includes(peer)) return peer;
  const header = req.headers['x-forwarded-for'];
  const hops = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').map((h) => normalise(h.trim())).filter((h): h is string => !!h);
  for (let i = hops.length - 1; i >= 0; i--) if (!trustedProxies.includes(hops[i]!)) return hops[i]!;
  return hops[0] ?? peer;
}

function normalise(ip: string | null): string | null {
  if (!ip) return null;
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}
