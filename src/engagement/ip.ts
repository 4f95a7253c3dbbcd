/** Minimal CIDR matching for IPv4 and IPv6 (no dependencies, pure). */

function ipv4ToBigInt(ip: string): bigint | null {
  const parts = ip.split('.');
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return null;
    const n = Number(part);
    if (n > 255) return null;
    value = (value << 8n) | BigInt(n);
  }
  return value;
}

function ipv6ToBigInt(ip: string): bigint | null {
  const zoneless = ip.split('%')[0] ?? '';
  let groups: string[];
  const halves = zoneless.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) counts as two groups.
  const last = tail.length ? tail[tail.length - 1] : head[head.length - 1];
  const embedded = last && last.includes('.') ? ipv4ToBigInt(last) : null;
  if (last && last.includes('.')) {
    if (embedded === null) return null;
    const replacement = [((embedded >> 16n) & 0xffffn).toString(16), (embedded & 0xffffn).toString(16)];
    if (tail.length) tail.splice(tail.length - 1, 1, ...replacement);
    else head.splice(head.length - 1, 1, ...replacement);
  }
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 0) return null;
    groups = [...head, ...Array<string>(missing).fill('0'), ...tail];
  } else {
    groups = head;
  }
  if (groups.length !== 8) return null;
  let value = 0n;
  for (const group of groups) {
    if (!/^[0-9a-f]{1,4}$/i.test(group)) return null;
    value = (value << 16n) | BigInt(parseInt(group, 16));
  }
  return value;
}

export type ParsedIp = { version: 4 | 6; value: bigint };

export function parseIp(ip: string): ParsedIp | null {
  const trimmed = ip.trim();
  const v4 = ipv4ToBigInt(trimmed);
  if (v4 !== null) return { version: 4, value: v4 };
  const v6 = ipv6ToBigInt(trimmed);
  if (v6 === null) return null;
  // IPv4-mapped IPv6 (::ffff:a.b.c.d), as dual-stack servers report IPv4 clients.
  if (v6 >> 32n === 0xffffn) return { version: 4, value: v6 & 0xffffffffn };
  return { version: 6, value: v6 };
}

/** A CIDR range parsed once: lists of hundreds are checked on every tracking hit. */
export type Cidr = { version: 4 | 6; shift: bigint; prefix: bigint };

export function parseCidr(cidr: string): Cidr | null {
  const [base, bitsText] = cidr.split('/');
  const net = base ? parseIp(base) : null;
  if (!net) return null;
  const width = net.version === 4 ? 32n : 128n;
  const bits = bitsText === undefined ? width : BigInt(Number(bitsText));
  if (bits < 0n || bits > width) return null;
  const shift = width - bits;
  return { version: net.version, shift, prefix: net.value >> shift };
}

export function inCidr(addr: ParsedIp, cidr: Cidr): boolean {
  return addr.version === cidr.version && addr.value >> cidr.shift === cidr.prefix;
}

/** True when `ip` falls inside `cidr` ("17.0.0.0/8", "2620:149::/32"); false for anything unparsable. */
export function ipInCidr(ip: string, cidr: string): boolean {
  const addr = parseIp(ip);
  const net = parseCidr(cidr);
  return !!addr && !!net && inCidr(addr, net);
}

export function ipInAny(ip: string | null, cidrs: readonly string[]): boolean {
  if (!ip) return false;
  return cidrs.some((cidr) => ipInCidr(ip, cidr));
}
