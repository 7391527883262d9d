/**
 * Coalesces what one turn of the event loop writes to a socket into one
 * system call, without holding the writes of a light turn. A socket's first
 * small frame of a turn is written at once, as a bare `ws` server would,
 * while the turn has made fewer than `DIRECT_WRITES_PER_TURN` such writes;
 * anything more (a socket's second frame, or any frame of a burst turn)
 * corks the socket, and one shared `setImmediate` uncorks every corked
 * socket.
 *
 * Why not cork every write: a corked frame waits for the end of the turn, and
 * at a steady rate that wait, and the frames and write requests it keeps
 * alive into scavenges, showed in the p99 (docs/performance.md, "Fifth
 * pass"). Why cork a burst: a turn that writes to thousands of sockets spends
 * less CPU when its system calls come together after its JavaScript than
 * when each interleaves with it.
 *
 * Bounded by the open connections (each is held at most once per turn).
 */

/** Sockets a turn writes at once before it counts as a burst and holds the rest. */
export const DIRECT_WRITES_PER_TURN = 64;
export interface Corkable {
  /** Releases the socket held for this turn. */
  release(): void;
}

export class WriteCoalescer {
  private held: Corkable[] = [];
  private scheduled = false;
  private turnNumber = 1;
  private directWrites = 0;
  private readonly flushAtEndOfTurn = (): void => this.flush();

  /**
   * The one rule for a writer's small frame: returns the current turn when
   * the frame may be written at once (the writer's first of this turn, and
   * the turn has made fewer than `DIRECT_WRITES_PER_TURN` such writes), the
   * writer keeping it as its `wroteInTurn`; null when the frame must wait
   * for the end of the turn (cork, then `hold`). Asking schedules that end.
   */
  directTurn(wroteInTurn: number): number | null {
    this.schedule();
    if (wroteInTurn === this.turnNumber) return null;
    return this.directWrites++ < DIRECT_WRITES_PER_TURN ? this.turnNumber : null;
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
    this.directWrites = 0;
    for (const item of held) item.release();
  }
}
