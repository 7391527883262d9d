/**
 * The seam between a connection's history read and its first frames, where
 * a slow engine (Redis) leaves time for things to happen: the welcome stays
 * the first frame whatever the client sends meanwhile, and live events of
 * another epoch that arrive during the read are never passed off as the
 * old stream's.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type {
  BrokerHandlers,
  HistoryRead,
  ReadCursor,
  StreamEvent,
} from '../../src/broker/broker.js';
import { encodeEvent } from '../../src/protocol/event-frame.js';
import { MemoryBroker } from '../../src/broker/memory-broker.js';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import { gate, type Gate } from '../helpers/gated-broker.js';
import { TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * A memory broker whose history read takes its snapshot at once and then
 * waits at a gate, as a read from a remote engine can, and which lets the test
 * hand the gateway what such an engine would (a resync, events of a new
 * epoch after a data loss): the one failure a single process cannot produce.
 */
class SlowReadBroker extends MemoryBroker {
  captured: BrokerHandlers | null = null;
  readGate: Gate | null = null;
  readsWaiting = 0;
  /** Set when the test says the stream was lost: later reads see the new epoch, as Redis would. */
  lostTo: string | null = null;

  override async start(handlers: BrokerHandlers): Promise<void> {
    this.captured = handlers;
    return super.start(handlers);
  }

  override async readHistory(userId: string, cursor: ReadCursor): Promise<HistoryRead> {
    if (this.lostTo !== null) {
      // The old stream is gone: a cursor of it reads as a gap in the new one.
      return { epoch: this.lostTo, headSeq: 6, ackedSeq: 0, events: [], from: 7, gap: true };
    }
    const read = await super.readHistory(userId, cursor);
    if (this.readGate) {
      this.readsWaiting++;
      await this.readGate.promise;
      this.readsWaiting--;
    }
    return read;
  }
}

let h: Harness;
afterEach(async () => h?.close());

describe('the seam between the history read and the first frames', () => {
  it('keeps the welcome first when the client speaks before it', async () => {
    const broker = new SlowReadBroker();
    h = await startGateway({ broker });
    broker.readGate = gate();
    const client = TestClient.open(h.wsUrl, { token: await h.token('alice') });
    await new Promise<void>((resolve) => client.ws.once('open', () => resolve()));
    client.send('not json');
    client.send({ type: 'ping' });
    await waitFor(() => broker.readsWaiting === 1, { what: 'the held history read' });
    // Let the two frames reach the server before the welcome can go out.
    await waitFor(
      () =>
        h.gateway.metrics.registry.getSingleMetric('agentsocket_bad_frames_total') !== undefined,
    );
    broker.readGate.open();
    await waitFor(() => client.frames.length >= 3, { what: 'welcome, error and pong' });
    expect(client.frames.map((f) => f.type)).toEqual(['welcome', 'error', 'pong']);
  });

  it('closes with 1012 rather than pass a new epoch’s events off as the old stream’s', async () => {
    const broker = new SlowReadBroker();
    h = await startGateway({ broker });
    for (let i = 0; i < 5; i++) await h.gateway.publish('alice', { event: 'token', data: { i } });
    broker.readGate = gate();
    const client = TestClient.open(h.wsUrl, { token: await h.token('alice') });
    await waitFor(() => broker.readsWaiting === 1, { what: 'the held history read' });
    // What a remote engine would say after losing the stream: resync, then a
    // new epoch starting again at seq 1.
    broker.lostTo = 'e_new_epoch';
    broker.captured?.onResync('alice');
    for (let seq = 1; seq <= 6; seq++) {
      const event: StreamEvent = {
        seq,
        id: `new-${seq}`,
        event: 'token',
        critical: false,
        ts: Date.now(),
        payload: encodeEvent({ event: 'token', data: null, dataJson: 'null', critical: false })
          .payload,
      };
      broker.captured?.onEvent('alice', 'e_new_epoch', event);
    }
    broker.readGate.open();
    const closed = await client.waitForClose();
    expect(closed.code).toBe(1012);
    const welcome = client.frames[0];
    expect(welcome?.type).toBe('welcome');
    // Only the old stream's own events, 1..5, were delivered: none of the new epoch's.
    expect(client.events().map((e) => e.id)).not.toContain('new-6');
    expect(client.seqs()).toEqual([1, 2, 3, 4, 5]);
  });
});
