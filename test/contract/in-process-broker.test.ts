/**
 * The in-process cluster engine against the one broker contract suite, with
 * the cross-node cases: every broker of the factory is a node of one
 * `InProcessCluster` (one per set of options, since the options are the
 * cluster's), as every Redis broker of its factory is a node of one Redis.
 * Then what only this engine has: a node that leaves takes its presence along.
 */
import { describe, expect, it } from 'vitest';
import { InProcessCluster } from '../../src/broker/in-process-cluster.js';
import { MemoryBroker } from '../../src/broker/memory-broker.js';
import { RecordingHandlers } from '../helpers/recording-handlers.js';
import { describeBrokerContract } from './broker-contract.js';

const clusters = new Map<string, InProcessCluster>();

describeBrokerContract(
  'in-process bus',
  async (options) => {
    const key = JSON.stringify(options);
    let cluster = clusters.get(key);
    if (cluster === undefined) clusters.set(key, (cluster = new InProcessCluster(options)));
    return { broker: new MemoryBroker({ cluster }), cleanup: async () => {} };
  },
  { sharedAcrossInstances: true },
);

describe('InProcessCluster nodes', () => {
  it('refuses cluster options on a node of a given cluster, and a node id twice', async () => {
    const cluster = new InProcessCluster();
    expect(() => new MemoryBroker({ cluster, historySize: 5 })).toThrow(
      new TypeError('option historySize belongs to the cluster: give it to InProcessCluster'),
    );
    const a = new MemoryBroker({ cluster, nodeId: 'same' });
    await a.start(new RecordingHandlers());
    const b = new MemoryBroker({ cluster, nodeId: 'same' });
    await expect(b.start(new RecordingHandlers())).rejects.toThrow(/already joined/);
    await a.close();
  });

  it('forgets a closed node: its presence, its load, its subscriptions; the streams stay', async () => {
    const cluster = new InProcessCluster();
    const a = new MemoryBroker({ cluster, nodeId: 'a' });
    const b = new MemoryBroker({ cluster, nodeId: 'b' });
    const onB = new RecordingHandlers();
    await a.start(new RecordingHandlers());
    await b.start(onB);
    await a.putConnections('u', [{ node: 'a', connectionId: 'c1', snapshot: '{}' }], 30_000);
    await a.putNodeLoad(1, 5_000);
    await a.subscribe('u');
    await a.close();
    expect(await b.listConnections('u')).toEqual([]);
    expect(await b.nodeLoads()).toEqual(new Map());
    const outcome = await b.publish('u', {
      event: 'note',
      critical: false,
      payload: '"event":"note","critical":false,"data":null}',
    });
    expect(outcome).toMatchObject({ seq: 1, connections: 0 });
    expect((await b.readHistory('u', { kind: 'acked' })).headSeq).toBe(1);
    // The bus no longer reaches a: a broadcast goes to b only, without throwing.
    await b.broadcast('{"type":"broadcast"}');
    expect(onB.broadcasts).toEqual(['{"type":"broadcast"}']);
    await b.close();
  });

  it("keeps a user's records only until their deadline: unseen past it, pruned by the next write", async () => {
    const clock = { t: 1_000_000 };
    const cluster = new InProcessCluster({ now: () => clock.t });
    const a = new MemoryBroker({ cluster, nodeId: 'a' });
    const b = new MemoryBroker({ cluster, nodeId: 'b' });
    await a.start(new RecordingHandlers());
    await b.start(new RecordingHandlers());
    const records = Array.from({ length: 50 }, (_, i) => ({
      node: 'a',
      connectionId: `c${i}`,
      snapshot: '{}',
    }));
    await a.putConnections('u', records, 1_000);
    await a.putNodeLoad(50, 1_000);
    expect(cluster.presence.countOf('u', clock.t)).toBe(50);
    clock.t += 1_000; // a stopped writing (stalled): its records and load are past their deadline
    expect(await b.listConnections('u')).toEqual([]);
    expect(cluster.presence.countOf('u', clock.t)).toBe(0);
    expect(await b.nodeLoads()).toEqual(new Map());
    await b.putConnections('u', [{ node: 'b', connectionId: 'd1', snapshot: '{}' }], 1_000);
    expect(cluster.presence.storedOf('u')).toBe(1);
    await b.putConnections('u', [], 1_000);
    expect(cluster.presence.storedOf('u')).toBe(0);
    await a.close();
    await b.close();
  });
});
