/**
 * PROTOCOL.md section 3, "Token lifetime", and the `refresh` frame of section
 * 2: a connection whose token reaches `exp` without a refresh is closed with
 * 4401; a refresh with a fresh token of the same user extends it
 * (`refreshed`); a token of another user closes it with 4403; an invalid one
 * gets an `error` frame and changes nothing.
 *
 * The authenticator runs with no leeway, so `exp` is the deadline. "The first
 * token has expired" is never waited for on the clock: a control connection
 * whose token expires no earlier is closed with 4401 first.
 */
import { randomBytes } from 'node:crypto';
import { decodeJwt, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import type { ErrorFrame, RefreshedFrame } from '../../src/protocol/frames.js';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import { expectRefusal } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

/** Seconds: `exp` is whole seconds, so the token expires 1 to 2 s from now. */
const SHORT = 2;

let h: Harness;
afterEach(async () => h?.close());

async function start(): Promise<Harness> {
  h = await startGateway({
    leewaySeconds: 0,
    // The sweep that enforces expiry runs every heartbeatMs / 2; no heartbeat
    // timeout gets in the way of these silent clients.
    heartbeatMs: 200,
    heartbeatTimeoutMs: 60_000,
  });
  return h;
}

function expiryOf(token: string): number {
  const { exp } = decodeJwt(token);
  if (exp === undefined) throw new Error('token without exp');
  return exp * 1000;
}

describe('token lifetime', () => {
  it('closes a connection with 4401 when its token expires, and refuses the token afterwards', async () => {
    await start();
    const token = await h.token('alice', { expiresIn: SHORT });
    const alice = await h.connect('alice', { token });
    const { epoch } = await alice.welcome();
    expect(h.gateway.connections('alice')[0]?.state).toBe('open');

    expect(await alice.waitForClose(5000)).toMatchObject({ code: 4401 });
    expect(Date.now()).toBeGreaterThanOrEqual(expiryOf(token));
    await waitFor(() => h.gateway.connectionCount === 0, { what: 'alice removed' });
    expect(await h.gateway.metrics.registry.metrics()).toMatch(
      /agentsocket_closes_total\{code="4401"\} 1\b/,
    );

    // A resume re-verifies the token like any handshake.
    const refusal = await expectRefusal(h.wsUrl, { token, query: { lastSeq: 0, epoch } });
    expect({ status: refusal.status, code: refusal.body.error.code }).toEqual({
      status: 401,
      code: 'unauthorized',
    });
  });

  it('extends the connection past its first token after a refresh of the same user', async () => {
    await start();
    const first = await h.token('alice', { expiresIn: SHORT });
    const alice = await h.connect('alice', { token: first });
    // Signed after alice's, so it expires no earlier.
    const control = await h.connect('control', {
      token: await h.token('control', { expiresIn: SHORT }),
    });

    const fresh = await h.token('alice', { expiresIn: 3600 });
    alice.send({ type: 'refresh', token: fresh });
    const refreshed = await alice.waitForFrame((f): f is RefreshedFrame => f.type === 'refreshed');
    expect(refreshed).toEqual({ type: 'refreshed', expiresAt: expiryOf(fresh) });

    expect(await control.waitForClose(5000)).toMatchObject({ code: 4401 });
    expect(Date.now()).toBeGreaterThanOrEqual(expiryOf(first));
    expect(alice.closedWith).toBeNull();
    await h.gateway.publish('alice', { event: 'note', data: 'after the first token' });
    expect((await alice.waitForEvents(1))[0]?.data).toBe('after the first token');
    expect(h.gateway.connections('alice')[0]?.state).toBe('open');
  });

  it('closes with 4403 on a refresh with a token of another user', async () => {
    await start();
    const alice = await h.connect('alice');
    const bob = await h.connect('bob');
    alice.send({ type: 'refresh', token: await h.token('bob') });
    expect(await alice.waitForClose()).toMatchObject({ code: 4403 });
    expect(alice.frames.some((f) => f.type === 'refreshed')).toBe(false);
    await waitFor(() => h.gateway.connections('alice').length === 0, { what: 'alice removed' });
    // Bob's own connection is untouched.
    expect(bob.closedWith).toBeNull();
    await h.gateway.publish('bob', { event: 'note', data: 1 });
    expect((await bob.waitForEvents(1))[0]?.seq).toBe(1);
  });

  it('closes with 4403 on a refresh by a user blocked since the handshake', async () => {
    const blocked = new Set<string>();
    h = await startGateway({ isUserBlocked: (userId) => blocked.has(userId) });
    const alice = await h.connect('alice');
    const bob = await h.connect('bob');
    blocked.add('alice');
    // A valid token of the same user: a blocked user cannot keep a connection alive.
    alice.send({ type: 'refresh', token: await h.token('alice') });
    expect(await alice.waitForClose()).toMatchObject({ code: 4403 });
    expect(alice.frames.some((f) => f.type === 'refreshed')).toBe(false);
    bob.send({ type: 'refresh', token: await h.token('bob') });
    await bob.waitForFrame((f): f is RefreshedFrame => f.type === 'refreshed');
    expect(bob.closedWith).toBeNull();
  });

  it('answers an invalid refresh token with an error frame, keeps the connection and its old expiry', async () => {
    await start();
    const token = await h.token('alice', { expiresIn: SHORT });
    const alice = await h.connect('alice', { token });
    const now = Math.floor(Date.now() / 1000);
    const invalid = [
      'garbage',
      await new SignJWT({ sub: 'alice' })
        .setProtectedHeader({ alg: 'HS256' })
        .setExpirationTime(now + 3600)
        .sign(randomBytes(32)),
      await h.token('alice', { expiresIn: -10 }),
    ];
    for (const [i, bad] of invalid.entries()) {
      alice.send({ type: 'refresh', token: bad });
      await waitFor(() => alice.frames.filter((f) => f.type === 'error').length === i + 1, {
        what: `error frame ${i + 1}`,
      });
    }
    const errors = alice.frames.filter((f): f is ErrorFrame => f.type === 'error');
    expect(errors.map((e) => e.code)).toEqual(['unauthorized', 'unauthorized', 'unauthorized']);
    for (const bad of invalid) expect(JSON.stringify(errors)).not.toContain(bad);
    expect(alice.frames.some((f) => f.type === 'refreshed')).toBe(false);

    expect(alice.closedWith).toBeNull();
    await h.gateway.publish('alice', { event: 'note', data: 'still open' });
    expect((await alice.waitForEvents(1))[0]?.data).toBe('still open');
    // Nothing was extended: the first token's expiry still applies.
    expect(await alice.waitForClose(5000)).toMatchObject({ code: 4401 });
    expect(Date.now()).toBeGreaterThanOrEqual(expiryOf(token));
  });
});
