/**
 * Coalesces what one turn of the event loop writes to a socket into one
 * system call, without holding a socket's first write of the turn. A socket's
 * first small frame of a turn is written at once, as a bare `ws` server
 * would; a second one in the same turn corks the socket, and one shared
 * `setImmediate` uncorks every corked socket. Under a flood a connection that
 * gets several events in a turn pays two system calls instead of one per
 * frame; at a steady rate (one event per socket per turn) nothing is held.
 *
 * Why not cork the first write too: a corked write keeps its frame and
 * Node's write request alive to the end of the turn. With thousands of
 * sockets written in one turn, a scavenge in the middle found megabytes of
 * them alive and promoted them to the old generation, and the collections
 * that followed set the p99 latency (docs/performance.md, "Fifth pass").
 *
 * Bounded by the open connections (each is held at most once per turn).
 */
export interface Corkable {
  /** Releases the socket held for this turn. */
  release(): void;
}

export class WriteCoalescer {
  private held: Corkable[] = [];
  private scheduled = false;
  private turnNumber = 1;
  private readonly flushAtEndOfTurn = (): void => this.flush();

  /**
   * The number of the current turn: a writer that wrote in this turn corks
   * its next write. Asking schedules the end of the turn, which moves it on.
   */
  get turn(): number {
    this.schedule();
    return this.turnNumber;
  }

  /** `item` has corked its socket for this turn; it is released at the end of the turn. */
  hold(item: Corkable): void {
    this.held.push(item);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flushAtEndOfTurn);
  }

  private flush(): void {
    const held = this.held;
    this.held = [];
    this.scheduled = false;
    this.turnNumber++;
    for (const item of held) item.release();
  }
}
