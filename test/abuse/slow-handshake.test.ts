/**
 * Slow senders (PROTOCOL.md section 2: "The handshake must complete within
 * 10 s of the first byte"). Two clocks bound a handshake: Node's
 * `headersTimeout` until the request head is parsed, which is enforced only
 * as often as `connectionsCheckingInterval` (so the server is built with
 * `handshakeServerOptions`), and the gateway's `handshakeTimeoutMs` from the
 * parsed head to the upgrade (slow authentication).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createJwtAuthenticator } from '../../src/auth/jwt-authenticator.js';
import type { UserAuthenticator } from '../../src/auth/authenticator.js';
import { handshakeServerOptions, hardenServer } from '../../src/gateway/harden-server.js';
import { createServer } from 'node:http';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import { RawWebSocket, upgradeHeaders, upgradeRequest } from '../helpers/raw-websocket.js';
import { waitFor } from '../helpers/wait-for.js';

const TIMEOUT_MS = 500;
/** Deadline plus one check interval plus scheduling slack on a busy 2-core box. */
const CUT_OFF_WITHIN_MS = TIMEOUT_MS + 1000;

let h: Harness;
afterEach(async () => h?.close());

function portOf(harness: Harness): number {
  return Number(new URL(harness.wsUrl).port);
}

async function hardened(authenticator?: UserAuthenticator): Promise<Harness> {
  return startGateway(
    { limits: { handshakeTimeoutMs: TIMEOUT_MS }, ...(authenticator ? { authenticator } : {}) },
    { server: handshakeServerOptions(TIMEOUT_MS) },
  );
}

describe('slow handshakes', () => {
  it('a client dripping its upgrade request byte by byte is cut off near the deadline', async () => {
    h = await hardened();
    const request = upgradeRequest(
      '/v1/ws',
      upgradeHeaders(`127.0.0.1:${portOf(h)}`, await h.token('slow')),
    );
    const started = performance.now();
    const raw = await RawWebSocket.open(portOf(h));
    let sent = 0;
    // The hostile client's own pace (one byte per 20 ms: the request would take
    // seconds); the test waits on the server's cut-off, not on this timer.
    const drip = setInterval(() => {
      if (sent < request.length && raw.write(request[sent] as string)) sent++;
    }, 20);
    try {
      await waitFor(() => raw.ended, { timeoutMs: CUT_OFF_WITHIN_MS, what: 'the cut-off' });
    } finally {
      clearInterval(drip);
    }
    expect(performance.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(sent).toBeLessThan(request.length);
    expect(raw.status === null || raw.status === 408).toBe(true);
    expect(h.gateway.connectionCount).toBe(0);
  });

  it('a client that connects and sends nothing is cut off too', async () => {
    h = await hardened();
    const raw = await RawWebSocket.open(portOf(h));
    await waitFor(() => raw.ended, { timeoutMs: CUT_OFF_WITHIN_MS, what: 'the cut-off' });
  });

  it('a partial request head that stalls is cut off', async () => {
    h = await hardened();
    const raw = await RawWebSocket.open(portOf(h), 'GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgr');
    await waitFor(() => raw.ended, { timeoutMs: CUT_OFF_WITHIN_MS, what: 'the cut-off' });
  });

  it('slow authentication after the head arrived is cut off by the gateway deadline', async () => {
    const real = createJwtAuthenticator({ secret: 'x'.repeat(32) });
    // Verification that never answers: only the gateway's own timer can end the handshake.
    const stuck: UserAuthenticator = { ...real, verify: () => new Promise(() => undefined) };
    h = await hardened(stuck);
    const started = performance.now();
    const raw = await RawWebSocket.open(
      portOf(h),
      upgradeRequest('/v1/ws', upgradeHeaders(`127.0.0.1:${portOf(h)}`, 'a.b.c')),
    );
    await waitFor(() => raw.ended, { timeoutMs: CUT_OFF_WITHIN_MS, what: 'the cut-off' });
    expect(performance.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(raw.status).toBeNull();
    expect(h.gateway.stats().errors.handshake_error).toBe(1);
  });

  it('a hardened server still serves ordinary handshakes', async () => {
    h = await hardened();
    const client = await h.connect('fast');
    expect((await client.welcome()).userId).toBe('fast');
  });

  it('hardenServer sets the timeouts before listen and refuses a listening server', async () => {
    const server = createServer();
    hardenServer(server, 2000);
    expect(server.headersTimeout).toBe(2000);
    expect(server.requestTimeout).toBe(30_000);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      expect(() => hardenServer(server, 2000)).toThrow(/before the server listens/);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    expect(handshakeServerOptions(10_000)).toEqual({
      headersTimeout: 10_000,
      requestTimeout: 30_000,
      connectionsCheckingInterval: 1000,
    });
    expect(() => handshakeServerOptions(0)).toThrow(TypeError);
  });
});
