import { BlockList, isIP } from 'node:net';

// Special-purpose IPv4 ranges (RFC 6890 and successors): none is a merchant's public server.
const PRIVATE_V4 = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) PRIVATE_V4.addSubnet(net, bits, 'ipv4');

// IPv6 is public only inside global unicast 2000::/3, less the ranges that are documentation or
// that tunnel to an IPv4 address of the sender's choosing (6to4, Teredo and the other 2001::/23).
const GLOBAL_V6 = new BlockList();
GLOBAL_V6.addSubnet('2000::', 3, 'ipv6');
const TUNNEL_OR_DOC_V6 = new BlockList();
for (const [net, bits] of [['2001::', 23], ['2001:db8::', 32], ['2002::', 16], ['3fff::', 20]] as const) TUNNEL_OR_DOC_V6.addSubnet(net, bits, 'ipv6');

/** The eight 16-bit groups of an IPv6 address (with `::` and a dotted IPv4 tail expanded). */
function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const middle = tail === undefined ? [] : Array(8 - left.length - right.length).fill('0');
  return [...left, ...middle, ...right].map((g) => parseInt(g, 16));
}

/** The IPv4 address an IPv6 form carries (::ffff:a.b.c.d mapped, ::a.b.c.d compatible, 64:ff9b::/96 NAT64). */
function embeddedIpv4(groups: number[]): string | undefined {
  const zeros = (from: number, to: number) => groups.slice(from, to).every((g) => g === 0);
  const mapped = zeros(0, 5) && (groups[5] === 0xffff || (groups[5] === 0 && (groups[6]! | groups[7]!) !== 0));
  const nat64 = groups[0] === 0x64 && groups[1] === 0xff9b && zeros(2, 6);
  if (!mapped && !nat64) return undefined;
  return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
}

/**
 * True unless `address` is a public unicast address. IPv6 forms that carry an IPv4 address are
 * judged by that address; anything that is not an IP address at all counts as private.
 */
export function isPrivateAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 4) return PRIVATE_V4.check(bare, 'ipv4');
  if (family !== 6) return true;
  const v4 = embeddedIpv4(ipv6Groups(bare));
  if (v4) return isPrivateAddress(v4);
  return !GLOBAL_V6.check(bare, 'ipv6') || TUNNEL_OR_DOC_V6.check(bare, 'ipv6');
}

/**
 * Why a webhook URL is refused, or undefined when its form is acceptable. The WHATWG URL parser
 * has already normalized every IPv4 form (2130706433, 0x7f000001, 127.1) in `hostname`; an IP
 * literal is judged here, a name after DNS (see jobs/webhook-target.ts).
 */
export function webhookUrlProblem(raw: string, allowInsecure: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'is not a URL';
  }
  if (url.username || url.password) return 'must not carry credentials';
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && allowInsecure)) return allowInsecure ? 'must be http or https' : 'must be https';
  if (allowInsecure) return undefined;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) && isPrivateAddress(host)) return 'must not be a private or loopback address';
  if (host === 'localhost' || host.endsWith('.localhost')) return 'must not be a private or loopback address';
  return undefined;
}
