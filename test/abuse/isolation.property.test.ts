/**
 * Isolation and order as a property (docs/delivery.md, invariants 1 and 2):
 * whatever interleaving of connects, disconnects, resumes with forged or
 * foreign cursors, publishes (critical or not, with repeated idempotency ids),
 * broadcasts and valid or forged acks happens, every frame a connection
 * receives is its own user's or a broadcast, and its event seqs run without a
 * gap or a repeat from where its welcome said, to the user's head.
 *
 * One live gateway for all runs; each run uses fresh user ids. To reproduce a
 * failure, fast-check prints `seed` and `path`: run with
 * `FC_SEED=<seed> FC_PATH=<path> npx vitest run test/abuse/isolation.property.test.ts`.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PublishResult } from '../../src/gateway/gateway-types.js';
import type { BroadcastFrame, EventFrame, WelcomeFrame } from '../../src/protocol/frames.js';
import { startGateway, type Harness } from '../helpers/gateway-harness.js';
import { TestClient } from '../helpers/test-client.js';
import { waitFor } from '../helpers/wait-for.js';

const SEED = Number(process.env.FC_SEED ?? 20_240_611);
const PATH = process.env.FC_PATH;
const USERS = 5;
const MAX_OPEN = 12;

type CursorKind = 'none' | 'own' | 'foreign' | 'ahead' | 'random';

type Action =
  | {
      kind: 'connect';
      user: number;
      cursor: CursorKind;
      seqPick: number;
      randomEpoch: string;
      /** Wait for the welcome before the next action (else the handshake overlaps them). */
      awaitWelcome: boolean;
    }
  | { kind: 'disconnect'; conn: number; terminate: boolean }
  | { kind: 'publish'; user: number; critical: boolean; idempotencyId: number | null }
  | { kind: 'broadcast' }
  | { kind: 'ack'; conn: number; forged: boolean };

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('connect' as const),
      user: fc.nat(USERS - 1),
      cursor: fc.constantFrom<CursorKind>('none', 'own', 'foreign', 'ahead', 'random'),
      seqPick: fc.nat(1000),
      randomEpoch: fc.string({
        unit: fc.constantFrom(...'abcdef0123456789'),
        minLength: 1,
        maxLength: 16,
      }),
      awaitWelcome: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('disconnect' as const),
      conn: fc.nat(50),
      terminate: fc.boolean(),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('publish' as const),
      user: fc.nat(USERS - 1),
      critical: fc.boolean(),
      idempotencyId: fc.option(fc.nat(3), { nil: null }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('broadcast' as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('ack' as const),
      conn: fc.nat(50),
      forged: fc.boolean(),
    }),
  },
);

interface Tracked {
  user: string;
  client: TestClient;
}

let h: Harness;
let run = 0;
/** What the runs exercised, so a vacuous pass (nothing connected, nothing delivered) fails. */
const seen = { welcomes: 0, events: 0, gaps: 0, replays: 0, broadcasts: 0, errors: 0 };

beforeAll(async () => {
  h = await startGateway({
    limits: { handshakesPerIpPerSecond: 100_000, maxConnectionsPerUser: MAX_OPEN + 1 },
  });
});
afterAll(async () => h?.close());

function isOpen(t: Tracked): boolean {
  return t.client.closedWith === null;
}

/** Plays one interleaving against the live gateway, then checks every connection. */
async function play(actions: readonly Action[]): Promise<void> {
  run++;
  const users = Array.from({ length: USERS }, (_, i) => `r${run}-u${i}`);
  const tracked: Tracked[] = [];
  const pending: Promise<unknown>[] = [];
  const heads = new Map<string, number>();
  const epochs = new Map<string, string>();
  const broadcastIds = new Set<string>();
  let published = 0;

  const learn = (user: string, result: PublishResult): void => {
    heads.set(user, Math.max(heads.get(user) ?? 0, result.seq));
    epochs.set(user, result.epoch);
  };

  try {
    for (const action of actions) {
      switch (action.kind) {
        case 'connect': {
          if (tracked.filter(isOpen).length >= MAX_OPEN) break;
          const user = users[action.user] as string;
          const head = heads.get(user) ?? 0;
          const other = epochs.get(users[(action.user + 1) % USERS] as string);
          let query: Record<string, string | number> = {};
          const own = epochs.get(user);
          if (action.cursor === 'own' && own) {
            query = { epoch: own, lastSeq: action.seqPick % (head + 1) };
          } else if (action.cursor === 'foreign' && other) {
            query = { epoch: other, lastSeq: action.seqPick % 5 };
          } else if (action.cursor === 'ahead' && own) {
            query = { epoch: own, lastSeq: head + 1 + action.seqPick };
          } else if (action.cursor === 'random') {
            query = { epoch: `e_${action.randomEpoch}`, lastSeq: action.seqPick };
          }
          const client = TestClient.open(h.wsUrl, { token: await h.token(user), query });
          tracked.push({ user, client });
          if (action.awaitWelcome) {
            await waitFor(() => client.closedWith || client.frames.length > 0, {
              what: 'the welcome or a close',
            });
          }
          break;
        }
        case 'disconnect': {
          const target = tracked[action.conn % Math.max(1, tracked.length)];
          if (!target) break;
          if (action.terminate || target.client.ws.readyState !== target.client.ws.OPEN) {
            target.client.terminate();
          } else {
            target.client.close();
          }
          break;
        }
        case 'publish': {
          const user = users[action.user] as string;
          const n = published++;
          const id =
            action.idempotencyId === null ? undefined : `idem-${user}-${action.idempotencyId}`;
          pending.push(
            h.gateway
              .publish(user, {
                event: 'prop',
                critical: action.critical,
                data: { user, n },
                ...(id ? { id } : {}),
              })
              .then((result) => learn(user, result)),
          );
          break;
        }
        case 'broadcast':
          pending.push(
            h.gateway
              .broadcast('notice', { run })
              .then((result) => void broadcastIds.add(result.id)),
          );
          break;
        case 'ack': {
          const target = tracked[action.conn % Math.max(1, tracked.length)];
          if (!target || target.client.ws.readyState !== target.client.ws.OPEN) break;
          const last = target.client.seqs().at(-1) ?? 0;
          target.client.ack(action.forged ? last + 1000 : last);
          break;
        }
      }
    }
    await Promise.all(pending);

    // Settle: every connection is welcomed or closed, and every open one has
    // everything up to its user's head.
    await waitFor(
      () => tracked.every((t) => !isOpen(t) || t.client.frames.some((f) => f.type === 'welcome')),
      { what: 'every connection welcomed or closed' },
    );
    await waitFor(
      () => tracked.every((t) => !isOpen(t) || reached(t.client) >= (heads.get(t.user) ?? 0)),
      { what: 'every open connection at its head', timeoutMs: 3000 },
    ).catch((error: Error) => {
      const state = tracked.map((t) => ({
        user: t.user,
        head: heads.get(t.user) ?? 0,
        closed: t.client.closedWith,
        frames: t.client.frames,
      }));
      throw new Error(`${error.message}\n${JSON.stringify(state, null, 1)}`);
    });

    for (const t of tracked) check(t, broadcastIds);
  } finally {
    for (const t of tracked) t.client.terminate();
    await waitFor(() => h.gateway.connectionCount === 0, { what: 'the run’s sockets gone' });
  }
}

/**
 * The first seq a connection must get after its welcome: the replay starts at
 * `from`; without a replay, live events start after the head (gap) or right
 * after the cursor (`from`).
 */
function firstSeq({ replay, headSeq }: WelcomeFrame): number {
  return replay.count > 0 ? replay.from : replay.gap ? headSeq + 1 : replay.from;
}

/** The seq a connection has everything up to (a resume at the head has it all at once). */
function reached(client: TestClient): number {
  const welcome = client.frames.find((f): f is WelcomeFrame => f.type === 'welcome');
  if (!welcome) return -1;
  return firstSeq(welcome) - 1 + client.events().length;
}

function check({ user, client }: Tracked, broadcastIds: ReadonlySet<string>): void {
  const welcomeAt = client.frames.findIndex((f) => f.type === 'welcome');
  if (welcomeAt < 0) {
    expect(client.frames).toEqual([]);
    return;
  }
  expect(welcomeAt).toBe(0);
  const welcome = client.frames[0] as WelcomeFrame;
  expect(welcome.userId).toBe(user);
  seen.welcomes++;
  if (welcome.replay.gap) seen.gaps++;
  if (welcome.replay.count > 0) seen.replays++;
  const events: EventFrame[] = [];
  for (const frame of client.frames.slice(1)) {
    switch (frame.type) {
      case 'event':
        expect((frame.data as { user: string }).user).toBe(user);
        events.push(frame);
        seen.events++;
        break;
      case 'broadcast':
        expect(broadcastIds.has((frame as BroadcastFrame).id)).toBe(true);
        seen.broadcasts++;
        break;
      case 'welcome':
        throw new Error('a second welcome');
      default:
        // error frames (forged acks), pings, pongs: carry no user data.
        expect(['error', 'ping', 'pong']).toContain(frame.type);
        if (frame.type === 'error') seen.errors++;
    }
  }
  const first = firstSeq(welcome);
  expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => first + i));
  expect(events.length).toBeGreaterThanOrEqual(welcome.replay.count);
}

describe('isolation as a property', () => {
  it('random interleavings never leak a frame across users or break a connection’s order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(actionArb, { minLength: 5, maxLength: 60 }), (actions) =>
        play(actions),
      ),
      { numRuns: 50, seed: SEED, ...(PATH ? { path: PATH } : {}) },
    );
    for (const [what, count] of Object.entries(seen)) {
      expect(count, `runs that exercised ${what}`).toBeGreaterThan(0);
    }
    console.log('isolation property exercised', seen);
  }, 120_000);
});
