/**
 * Keeps this node's records in the broker's connection directory in step with
 * its registry (`Broker.putConnections`), so that an operator on any node sees
 * the connections of every node.
 *
 * A user's records are written when one of its connections opens or closes,
 * and rewritten for every user by a supervised task before they expire.
 * Writes of one user never overlap: a change while a write is in flight marks
 * the user, and one more write follows with the registry as it is then, so
 * the last write always shows the registry's final state whatever order the
 * changes came in.
 *
 * Bounds: `inflight` and `again` hold only users with a write in flight, at
 * most the users of this node (the registry's limits bound those), since
 * `touch` is called for users that have, or just had, a connection here.
 */
export interface PresenceWriterOptions {
  /** Writes the user's records as the registry holds them now. */
  write(userId: string): Promise<void>;
  /** A write failed (the broker is down): the next change or refresh writes again. */
  onError(userId: string, error: unknown): void;
  /** Users written at once by `refresh`. Default 64. */
  concurrency?: number;
}

/** Resolves after the event loop has served I/O once. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class PresenceWriter {
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private readonly concurrency: number;

  constructor(private readonly options: PresenceWriterOptions) {
    this.concurrency = options.concurrency ?? 64;
  }

  /** The user's connections changed: write its records (once more, if a write is in flight). */
  touch(userId: string): Promise<void> {
    const running = this.inflight.get(userId);
    if (running !== undefined) {
      this.again.add(userId);
      return running;
    }
    const done = (async () => {
      try {
        do {
          this.again.delete(userId);
          try {
            await this.options.write(userId);
          } catch (error) {
            this.options.onError(userId, error);
          }
        } while (this.again.has(userId));
      } finally {
        this.inflight.delete(userId);
      }
    })();
    this.inflight.set(userId, done);
    return done;
  }

  /**
   * Rewrites the records of every user in `users`, `concurrency` at a time,
   * one batch per turn of the event loop. On the memory engine a write
   * settles at once, so without the turn the whole refresh (2,000 users:
   * 30–50 ms of snapshots) ran as one task and stalled every socket.
   */
  async refresh(users: Iterable<string>): Promise<void> {
    const batch: Promise<void>[] = [];
    for (const userId of users) {
      batch.push(this.touch(userId));
      if (batch.length >= this.concurrency) {
        await Promise.all(batch.splice(0));
        await nextTurn();
      }
    }
    await Promise.all(batch);
  }

  /** Users with a write in flight (never more than the users of this node). */
  get pending(): number {
    return this.inflight.size;
  }
}
