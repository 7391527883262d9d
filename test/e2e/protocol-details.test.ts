/**
 * Rules of PROTOCOL.md that no other test pins on the wire: no
 * permessage-deflate, the critical-by-default table of the agent events, and
 * a ticket's connection ending when the token it was issued for expires.
 */
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { AGENT_EVENT_CRITICAL } from '../../src/protocol/agent-events.js';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import { TestClient } from '../helpers/test-client.js';

let h: Harness;
afterEach(async () => h?.close());

describe('protocol details on the wire', () => {
  it('never negotiates permessage-deflate, even when the client offers it', async () => {
    h = await startGateway();
    const ws = new WebSocket(h.wsUrl, {
      headers: { authorization: `Bearer ${await h.token('alice')}` },
      perMessageDeflate: true,
    });
    let extensions: string | undefined = 'not seen';
    ws.once('upgrade', (res) => (extensions = res.headers['sec-websocket-extensions']));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    expect(extensions).toBeUndefined();
    expect(ws.extensions).toBe('');
    ws.terminate();
  });

  it('marks the agent events critical by default as section 4 says, and others not', async () => {
    // A delta after the run's end: about criticality, not the run grammar.
    h = await startGateway({ runGrammar: 'off' });
    const client = await h.connect('alice');
    const data = {
      agent_started: { agent: 'a' },
      agent_thinking: { text: 't' },
      agent_text: { text: 'a' },
      tool_executing: { toolCallId: 'c', tool: 'x', args: {} },
      tool_completed: { toolCallId: 'c', tool: 'x' },
      agent_completed: { status: 'succeeded' },
    } as const;
    for (const [event, body] of Object.entries(data)) {
      await h.gateway.publish('alice', { event, runId: 'r1', data: body });
    }
    await h.gateway.publish('alice', { event: 'custom.token', data: 'x' });
    await h.gateway.publish('alice', {
      event: 'agent_thinking',
      runId: 'r1',
      data: { text: 'y' },
      critical: true,
    });
    const events = await client.waitForEvents(8);
    expect(Object.fromEntries(events.slice(0, 6).map((e) => [e.event, e.critical]))).toEqual({
      ...AGENT_EVENT_CRITICAL,
    });
    expect(AGENT_EVENT_CRITICAL).toEqual({
      agent_started: true,
      agent_thinking: false,
      agent_text: false,
      tool_executing: false,
      tool_completed: true,
      agent_completed: true,
    });
    expect(events[6]?.critical).toBe(false);
    expect(events[7]?.critical).toBe(true); // the publisher's word wins
  });

  it('ends a ticket’s connection with 4401 when the token it was issued for expires', async () => {
    h = await startGateway({}, { leewaySeconds: 0 });
    const expiresAt = Date.now() + 1500;
    const { ticket } = await h.gateway.tickets.issue({ userId: 'alice', expiresAt });
    const client = await TestClient.connect(h.wsUrl, { query: { ticket } });
    const closed = await client.waitForClose(10_000);
    expect(closed.code).toBe(4401);
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAt);
  });
});
