/**
 * The node's listeners of single runs (the AG-UI SSE streams): like
 * connections, they follow a user's live stream, so fan-out hands them the
 * user's events and the subscription is held while any listener of the user
 * is here. Bounded per node and per user; a listener past either bound is
 * refused before it is registered.
 */
import { agentsocketEventOf } from '../agui/agentsocket-event.js';
import type { AgentsocketEvent, StreamInterruptReason } from '../agui/agui-types.js';

export interface RunListener {
  readonly userId: string;
  /** A live event of the user's stream (any run), in seq order; `frame` is its frame text. */
  onEvent(event: AgentsocketEvent, frame: string): void;
  /** Continuity of the user's live events could not be proven: re-read history. */
  onResync(): void;
  /** End the stream now, saying why. */
  interrupt(reason: StreamInterruptReason): void;
}

export interface RunListenerLimits {
  /** Listeners on this node. */
  maxStreams: number;
  /** Listeners of one user on this node. */
  maxStreamsPerUser: number;
}

export type RunListenerRefusal = 'node_limit' | 'user_limit';

export class RunListeners {
  private readonly users = new Map<string, Set<RunListener>>();
  private total = 0;

  constructor(private readonly limits: RunListenerLimits) {}

  /** Registers a listener, or says which bound refused it. */
  add(listener: RunListener): RunListenerRefusal | null {
    if (this.total >= this.limits.maxStreams) return 'node_limit';
    const set = this.users.get(listener.userId) ?? new Set<RunListener>();
    if (set.has(listener)) return null;
    if (set.size >= this.limits.maxStreamsPerUser) return 'user_limit';
    set.add(listener);
    this.users.set(listener.userId, set);
    this.total++;
    return null;
  }

  remove(listener: RunListener): void {
    const set = this.users.get(listener.userId);
    if (!set?.delete(listener)) return;
    this.total--;
    if (set.size === 0) this.users.delete(listener.userId);
  }

  countOf(userId: string): number {
    return this.users.get(userId)?.size ?? 0;
  }

  get size(): number {
    return this.total;
  }

  /** True when some AG-UI stream of this node follows `userId` (the fan-out frames for it only then). */
  follows(userId: string): boolean {
    // Asked on every live event: no lookup while no stream follows anyone (the usual case).
    return this.users.size > 0 && this.users.has(userId);
  }

  /** Hands a live event (its frame `text`) to the user's listeners, parsed once for all. */
  deliver(userId: string, epoch: string, text: string): void {
    const set = this.users.get(userId);
    if (set === undefined) return;
    const parsed = agentsocketEventOf(text, epoch);
    // A copy: a listener may end (and leave the set) on this very event.
    for (const listener of [...set]) listener.onEvent(parsed, text);
  }

  resync(userId: string): void {
    for (const listener of [...(this.users.get(userId) ?? [])]) listener.onResync();
  }

  /** Ends every listener (the node is draining). */
  interruptAll(reason: StreamInterruptReason): void {
    for (const set of [...this.users.values()]) {
      for (const listener of [...set]) listener.interrupt(reason);
    }
  }
}
