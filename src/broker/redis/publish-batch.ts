/**
 * Groups the publishes of one event-loop turn into one call of the publish
 * script per step group (`EngineLinks.stepGroup`: every user on one Redis,
 * the users of one hash slot on a cluster), so that the script's fixed cost
 * per call (its arguments, its prelude), the node's per command and the
 * wake-ups on both sides are paid once per batch, not once per event.
 *
 * Each publisher still gets its own event's reply (or the call's error: a
 * call that fails fails every event in it, with the error a single publish
 * would get). Events are sent in the order they were published: a batch
 * keeps their order, and batches of one group go out on the same link in the
 * order they were closed, so the events of one user keep their publish order.
 * A batch is bounded in events and bytes; a publish that would pass a bound
 * closes the batch (sent at once) and opens the next.
 */
import type { EngineLinks } from './engine-links.js';
import { InFlightGate } from './in-flight-gate.js';

/** Events per call at most: a call blocks Redis while it runs. */
export const MAX_BATCH_EVENTS = 128;
/**
 * Bytes of events (payloads, names, ids, run log records) per call at most.
 * Small events are what batching is for; a 64 KiB event goes alone (at
 * 256 KiB, calls of four such events timed out under the bench's 64 KiB load).
 */
export const MAX_BATCH_BYTES = 64 * 1024;
/** Publish calls in flight on a node at most; later ones wait (`in-flight-gate.ts`). */
export const MAX_CALLS_IN_FLIGHT = 64;
/** Publish calls waiting for a slot at most; past it a publish is refused (503, retry). */
export const MAX_CALLS_WAITING = 4_096;

export interface BatchLimits {
  maxEvents: number;
  maxBytes: number;
}

/** One event's part of a call (keys and arguments: `publish-script.ts`). */
export interface BatchEntry {
  userId: string;
  keys: readonly string[];
  args: readonly (string | number)[];
  /** The event's ts: the batch's age cutoff is taken from its oldest. */
  ts: number;
  /** What the event adds to the call, counted against `maxBytes`. */
  bytes: number;
}

/** The batch's constant arguments, given its oldest ts and its event count. */
export type BatchArguments = (oldestTs: number, count: number) => (string | number)[];

interface Pending {
  entry: BatchEntry;
  resolve: (reply: unknown) => void;
  reject: (error: unknown) => void;
}

interface Batch {
  group: string;
  items: Pending[];
  bytes: number;
}

export class PublishBatcher {
  /** The batch being filled per step group, in the order they were opened. */
  private readonly open = new Map<string, Batch>();
  private scheduled = false;
  private readonly gate: InFlightGate;
  private readonly flushAll = (): void => {
    this.scheduled = false;
    const batches = [...this.open.values()];
    this.open.clear();
    for (const batch of batches) this.send(batch);
  };

  constructor(
    private readonly links: EngineLinks,
    private readonly batchArguments: BatchArguments,
    private readonly limits: BatchLimits,
    /** Bound the calls in flight (`MAX_CALLS_IN_FLIGHT`); false: every call leaves at once. */
    boundInFlight: boolean,
  ) {
    this.gate = new InFlightGate(
      'publish calls',
      boundInFlight ? MAX_CALLS_IN_FLIGHT : Infinity,
      MAX_CALLS_WAITING,
    );
  }

  /** Queues one event for this turn's call; resolves with its own reply. */
  add(entry: BatchEntry): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const group = this.links.stepGroup(entry.userId);
      let batch = this.open.get(group);
      if (batch !== undefined && batch.bytes + entry.bytes > this.limits.maxBytes) {
        this.close(batch);
        batch = undefined;
      }
      if (batch === undefined) {
        batch = { group, items: [], bytes: 0 };
        this.open.set(group, batch);
      }
      batch.items.push({ entry, resolve, reject });
      batch.bytes += entry.bytes;
      if (batch.items.length >= this.limits.maxEvents) this.close(batch);
      if (!this.scheduled && this.open.size > 0) {
        this.scheduled = true;
        setImmediate(this.flushAll);
      }
    });
  }

  /** Sends a full batch now: it leaves before anything published after it. */
  private close(batch: Batch): void {
    this.open.delete(batch.group);
    this.send(batch);
  }

  private send(batch: Batch): void {
    const { items } = batch;
    const keys: (string | number)[] = [0];
    const args: (string | number)[] = [];
    let oldest = Infinity;
    for (const { entry } of items) {
      for (const key of entry.keys) keys.push(key);
      for (const arg of entry.args) args.push(arg);
      if (entry.ts < oldest) oldest = entry.ts;
    }
    keys[0] = keys.length - 1;
    const head = keys.concat(this.batchArguments(oldest, items.length), args);
    // Through the gate: a call that finds a slot is written now, in this
    // turn; the others in the order they were closed (the gate is FIFO).
    const call = this.gate.run(() =>
      this.links.userStep(items[0]!.entry.userId, (command, guard) => {
        const reply = command.agentsocketPublish(...head, ...guard);
        // Written now, with whatever a hold of this turn kept back (`turn-writes.ts`).
        this.links.releaseHeld();
        return reply;
      }),
    );
    call.then(
      (replies) => {
        if (!Array.isArray(replies) || replies.length !== items.length) {
          const error = new Error('RedisBroker: malformed publish reply');
          for (const item of items) item.reject(error);
          return;
        }
        for (let i = 0; i < items.length; i++) items[i]!.resolve(replies[i]);
      },
      (error: unknown) => {
        for (const item of items) item.reject(error);
      },
    );
  }
}
