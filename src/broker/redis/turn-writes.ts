/**
 * Holds what a Redis link writes in one turn of the event loop and lets it
 * go at the end of the turn: the commands of a burst leave in one system
 * call instead of one each. A resume storm's handshakes each write a
 * SUBSCRIBE, two reads, a presence write and an ack; one `write` per command
 * was a fifth of the node's CPU in the storm (docs/performance.md, "Resume
 * storm on Redis").
 *
 * What it costs: a held command waits for the end of its turn (the check
 * phase, as the gateway's own `WriteCoalescer`), and one held from the
 * check phase itself (the acks' flush, a presence refresh) waits for the
 * next turn's. So only steps that come in bursts are held (reads, acks,
 * presence, subscriptions), and the publish call, written from the check
 * phase (`publish-batch.ts`), lets every hold go as it is written
 * (`releaseNow`): it never waits behind one.
 *
 * Bounded by the links of the engine (each is held at most once per turn).
 */
import type { Writable } from 'node:stream';

export class TurnWrites {
  private held: Writable[] = [];
  private scheduled = false;
  private readonly releaseAll = (): void => {
    const held = this.held;
    this.held = [];
    this.scheduled = false;
    for (const stream of held) stream.uncork();
  };

  /** Corks `stream` until the end of this turn (once per turn, however often asked). */
  hold(stream: Writable): void {
    if (this.held.includes(stream)) return;
    stream.cork();
    this.held.push(stream);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.releaseAll);
  }

  /** Lets every held stream go now (a publish call is written; the links are closing). */
  releaseNow(): void {
    if (this.held.length > 0) this.releaseAll();
  }
}
