/**
 * The client IP of a request: the socket's peer address, unless the peer is a
 * configured trusted proxy, in which case `X-Forwarded-For` is read from the
 * right, skipping trusted proxies, and the first untrusted hop is the client.
 * A client can therefore never pick its own IP (and dodge per-IP limits)
 * by sending the header itself.
 */
import type { IncomingMessage } from 'node:http';

function normalize(address: string): string {
  // IPv4-mapped IPv6 (::ffff:1.2.3.4) is the IPv4 address.
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

export function clientIp(req: IncomingMessage, trustedProxies: ReadonlySet<string>): string {
  const peer = normalize(req.socket.remoteAddress ?? 'unknown');
  if (trustedProxies.size === 0 || !trustedProxies.has(peer)) return peer;
  const header = req.headers['x-forwarded-for'];
  const value = Array.isArray(header) ? header.join(',') : header;
  if (!value) return peer;
  const hops = value
    .split(',')
    .map((hop) => normalize(hop.trim()))
    .filter((hop) => hop.length > 0 && hop.length <= 64);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] as string;
    if (!trustedProxies.has(hop)) return hop;
  }
  return hops[0] ?? peer;
}
