/**
 * Wall-clock milliseconds with sub-millisecond resolution, comparable across
 * the processes of one machine: `performance.timeOrigin` is each process's
 * start on the system clock, `performance.now()` the monotonic time since.
 * Latency = receiver's `nowMs()` minus the sender's, embedded in the message.
 */
export function nowMs() {
  return performance.timeOrigin + performance.now();
}
