/**
 * A WebSocket handshake never has a body: an upgrade request announcing one
 * (chunked or Content-Length) is refused with 400 before the upgrade, so its
 * "body" can never be smuggled in as the first bytes of the WebSocket stream.
 * Found by the fuzz storm (test/abuse/fuzz.test.ts), which upgraded them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import { RawWebSocket, upgradeHeaders, upgradeRequest } from '../helpers/raw-websocket.js';
import { waitFor } from '../helpers/wait-for.js';

let h: Harness;
afterEach(async () => h?.close());

describe('upgrade requests with a body', () => {
  for (const [name, extra, body] of [
    ['chunked', { 'Transfer-Encoding': 'chunked' }, '5\r\nhello\r\n0\r\n\r\n'],
    ['Content-Length', { 'Content-Length': '5' }, 'hello'],
  ] as const) {
    it(`${name}: refused with 400 bad_request, no upgrade`, async () => {
      h = await startGateway();
      const port = Number(new URL(h.wsUrl).port);
      const headers = { ...upgradeHeaders(`127.0.0.1:${port}`, await h.token('body')), ...extra };
      const raw = await RawWebSocket.open(port, upgradeRequest('/v1/ws', headers) + body);
      await waitFor(() => raw.status !== null, { what: 'the answer' });
      expect(raw.status).toBe(400);
      await waitFor(() => raw.httpText.includes('}}'), { what: 'the error body' });
      expect(raw.httpText).toContain('"code":"bad_request"');
      expect(h.gateway.connectionCount).toBe(0);
      raw.destroy();
    });
  }

  it('Content-Length: 0 is no body and is admitted', async () => {
    h = await startGateway();
    const port = Number(new URL(h.wsUrl).port);
    const headers = {
      ...upgradeHeaders(`127.0.0.1:${port}`, await h.token('empty')),
      'Content-Length': '0',
    };
    const raw = await RawWebSocket.open(port, upgradeRequest('/v1/ws', headers));
    await waitFor(() => raw.status !== null, { what: 'the answer' });
    expect(raw.status).toBe(101);
    raw.destroy();
  });
});
