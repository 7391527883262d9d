/**
 * The critical events a connection was sent and has not acked yet, oldest
 * first, each with its deadline (PROTOCOL.md section 3, "Critical events").
 * One timer per connection, armed for the oldest deadline only.
 *
 * Bounded: past `maxPending` unacked critical events the connection is as
 * good as timed out, and the caller closes it.
 */
export class CriticalAcks {
  private seqs: number[] = [];
  private deadlines: number[] = [];
  private head = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly timeoutMs: number,
    private readonly maxPending: number,
    private readonly onTimeout: (seq: number) => void,
  ) {}

  /** Records a critical event just written; false when the bound is passed. */
  sent(seq: number, now: number): boolean {
    if (this.pending >= this.maxPending) return false;
    this.seqs.push(seq);
    this.deadlines.push(now + this.timeoutMs);
    if (!this.timer) this.arm(now);
    return true;
  }

  /** A cumulative ack: every pending seq up to `seq` is done. */
  ackedUpTo(seq: number, now: number): void {
    while (this.head < this.seqs.length && (this.seqs[this.head] as number) <= seq) this.head++;
    if (this.head === this.seqs.length) {
      this.seqs = [];
      this.deadlines = [];
      this.head = 0;
      this.disarm();
    } else if (this.head > 1024) {
      // Compact now and then so the arrays don't keep acked entries.
      this.seqs = this.seqs.slice(this.head);
      this.deadlines = this.deadlines.slice(this.head);
      this.head = 0;
    }
    if (this.pending > 0 && !this.timer) this.arm(now);
  }

  get pending(): number {
    return this.seqs.length - this.head;
  }

  stop(): void {
    this.disarm();
  }

  private arm(now: number): void {
    const deadline = this.deadlines[this.head];
    if (deadline === undefined) return;
    this.timer = setTimeout(() => this.fire(), Math.max(0, deadline - now));
    this.timer.unref?.();
  }

  private fire(): void {
    this.timer = null;
    const seq = this.seqs[this.head];
    const deadline = this.deadlines[this.head];
    if (seq === undefined || deadline === undefined) return;
    const now = Date.now();
    if (deadline <= now) this.onTimeout(seq);
    else this.arm(now);
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
