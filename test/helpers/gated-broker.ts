/**
 * A real `MemoryBroker` whose `subscribe` and `readHistory` can be held at a
 * gate per user, so a test can look at the gateway while a handshake is
 * half-way (a connection in `connecting`, a user's lock held) and then let it
 * go on. Nothing is faked: every call ends in the memory broker itself.
 */
import type { HistoryRead, ReadCursor } from '../../src/broker/broker.js';
import { MemoryBroker, type MemoryBrokerOptions } from '../../src/broker/memory-broker.js';

export interface Gate {
  readonly promise: Promise<void>;
  open(): void;
}

export function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

export class GatedBroker extends MemoryBroker {
  /** Users whose next `subscribe` calls wait for the gate. */
  readonly subscribeGates = new Map<string, Gate>();
  /** Users whose next `readHistory` calls wait for the gate. */
  readonly historyGates = new Map<string, Gate>();
  /** Every `subscribe` call, in order, by user. */
  readonly subscribeCalls: string[] = [];
  /** `readHistory` calls waiting at a gate right now. */
  waitingReads = 0;

  constructor(options: MemoryBrokerOptions = {}) {
    super(options);
  }

  override async subscribe(userId: string): Promise<void> {
    this.subscribeCalls.push(userId);
    await this.subscribeGates.get(userId)?.promise;
    return super.subscribe(userId);
  }

  override async readHistory(userId: string, cursor: ReadCursor): Promise<HistoryRead> {
    const held = this.historyGates.get(userId);
    if (held) {
      this.waitingReads++;
      await held.promise;
      this.waitingReads--;
    }
    return super.readHistory(userId, cursor);
  }
}
