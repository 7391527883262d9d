/**
 * A node whose user tokens are checked against a JWKS (`--jwks-url`), black
 * box: a real `agentsocket serve` process and a JWKS served on 127.0.0.1.
 * While the key set cannot be fetched, a handshake and `POST /v1/tickets`
 * answer 503 with `Retry-After` (an outage to retry, not a bad token); once
 * it is back, the same token is accepted. Keys the token names in its header
 * (`jku`) are never fetched.
 */
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeys } from '../../src/auth/api-keys.js';
import { startCliServer, type CliServer } from '../helpers/cli-process.js';
import { expectRefusal, TestClient } from '../helpers/test-client.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 });
const API_KEY = ApiKeys.generate();

let node: CliServer;
let jwksServer: Server;
let jwksUp = false;
let jwksRequests = 0;

function sign(key: typeof rsa.privateKey, header: Record<string, unknown>): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: 'alice' })
    .setProtectedHeader({ alg: 'RS256', ...header })
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(key);
}

beforeAll(async () => {
  jwksServer = createServer((_req, res) => {
    jwksRequests++;
    if (!jwksUp) {
      res.writeHead(503);
      res.end();
      return;
    }
    const key = { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256' };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [key] }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  const { port } = jwksServer.address() as AddressInfo;
  node = await startCliServer(['--jwks-url', `http://127.0.0.1:${port}/jwks.json`], {
    AGENTSOCKET_API_KEYS: API_KEY,
  });
});

afterAll(async () => {
  expect(await node.stop('SIGTERM')).toBe(0);
  await new Promise<void>((resolve) => jwksServer.close(() => resolve()));
});

describe('a node on a JWKS', () => {
  it('answers 503 with Retry-After while the JWKS is down, and accepts the token once it is back', async () => {
    const token = await sign(rsa.privateKey, { kid: 'k1' });
    const refusal = await expectRefusal(node.wsUrl, { token });
    expect({ status: refusal.status, code: refusal.body.error.code }).toEqual({
      status: 503,
      code: 'unavailable',
    });
    expect(refusal.headers['retry-after']).toBeDefined();
    const ticket = await fetch(`${node.url}/v1/tickets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(ticket.status).toBe(503);
    expect(ticket.headers.get('retry-after')).not.toBeNull();
    expect(((await ticket.json()) as { error: { code: string } }).error.code).toBe('unavailable');
    expect(jwksRequests).toBeGreaterThan(0);

    jwksUp = true;
    const client = await TestClient.connect(node.wsUrl, { token });
    expect((await client.welcome()).userId).toBe('alice');
    client.terminate();
    const issued = await fetch(`${node.url}/v1/tickets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(issued.status).toBe(201);
  });

  it('refuses a token whose jku points at another key set, without fetching it', async () => {
    jwksUp = true;
    let fetched = 0;
    const evil = createServer((_req, res) => {
      fetched++;
      const key = { ...attacker.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256' };
      res.end(JSON.stringify({ keys: [key] }));
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = evil.address() as AddressInfo;
      const forged = await sign(attacker.privateKey, {
        kid: 'k1',
        jku: `http://127.0.0.1:${port}/jwks.json`,
      });
      const refusal = await expectRefusal(node.wsUrl, { token: forged });
      expect({ status: refusal.status, code: refusal.body.error.code }).toEqual({
        status: 401,
        code: 'unauthorized',
      });
      expect(fetched).toBe(0);
    } finally {
      await new Promise<void>((resolve) => evil.close(() => resolve()));
    }
  });
});
