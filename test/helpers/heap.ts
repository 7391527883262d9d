/**
 * Heap measurements for tests that check memory returns to baseline: a full
 * garbage collection without needing `node --expose-gc` on the test worker
 * (the flag is set at runtime; `gc` is then read from a fresh V8 context).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** `heapUsed` after full collections, in bytes. */
export async function settledHeapUsed(): Promise<number> {
  // Two rounds with a turn of the event loop between them: finalizers and
  // weak callbacks of the first round free more in the second.
  for (let i = 0; i < 2; i++) {
    gc();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  gc();
  return process.memoryUsage().heapUsed;
}

export const MiB = 1024 * 1024;
