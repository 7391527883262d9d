/**
 * Coalesces what one turn of the event loop writes to a socket into one
 * system call: the first write of a turn corks the socket, and one shared
 * `setImmediate` uncorks every corked socket. Under load a connection that
 * gets several events in a turn pays one `writev` instead of one per frame;
 * at rest an event still leaves within the same turn.
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

  /** `item` has corked its socket for this turn; it is released at the end of the turn. */
  hold(item: Corkable): void {
    this.held.push(item);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    const held = this.held;
    this.held = [];
    this.scheduled = false;
    for (const item of held) item.release();
  }
}
