/**
 * The bytes of one memory stream's frames (`memory-stream.ts`): a queue of
 * chunks, each a Buffer written once from start to end and never written
 * over, because views of its frames may still wait in a socket's queue. A
 * frame lives in one chunk, named by the chunk's serial number and its
 * offset there.
 *
 * Why chunks: a single slab that doubles when full copied every live frame on
 * each move, and with a round-robin publisher every stream moved in the same
 * moment (2,000 streams, tens of MiB copied and allocated at once). Each
 * allocation is external memory to V8, and its growth since the last full
 * collection is what starts one ("external memory pressure"). A chunk is
 * allocated once, filled, and let go when the stream drops its last frame:
 * nothing is copied, and V8 sees about one byte allocated per byte published.
 *
 * Bound: a new chunk holds half to nine sixteenths of the live frames (between
 * `MIN_CHUNK_BYTES` and `MAX_CHUNK_BYTES`), or one larger frame alone. So the
 * chunks hold the live frames plus the spent head of the oldest chunk and the
 * unused tail of the newest: at most about 2.25 times the live frames or the
 * live frames plus two `MIN_CHUNK_BYTES`, whichever is more, and never more
 * than the live frames plus two `MAX_CHUNK_BYTES`.
 */

/**
 * The smallest chunk: a few dozen small frames. Each chunk is an allocation
 * V8 tracks as external memory, which costs microseconds; with 1 KiB chunks
 * a growing history of small events allocated one every 6 events, and the
 * allocations were a sixth of a publish's time (docs/performance.md, "Fifth
 * pass"). Every chunk after a stream's first is at least this large.
 */
export const MIN_CHUNK_BYTES = 4 * 1024;
/**
 * A stream's first chunk: most streams hold a few events, and a chunk is
 * memory outside `maxTotalBytes` (which counts payload bytes), so a stream
 * with one event keeps 1 KiB, not `MIN_CHUNK_BYTES`.
 */
export const FIRST_CHUNK_BYTES = 1024;
/** The largest chunk made for small frames (a larger frame gets a chunk of its size). */
export const MAX_CHUNK_BYTES = 64 * 1024;

export class FrameSlab {
  // Null while the stream holds nothing: an idle stream keeps no array.
  private chunks: Buffer[] | null = null;
  /** The serial number of `chunks[0]`; serials only grow. */
  private firstSerial = 0;
  /** Bytes written in the newest chunk. */
  private tailUsed = 0;
  private total = 0;

  /** Bytes the chunks hold, live frames and spent ones. */
  get bytes(): number {
    return this.total;
  }

  /** The serial of the chunk `reserve` wrote into last. */
  get tailSerial(): number {
    return this.firstSerial + (this.chunks === null ? 0 : this.chunks.length - 1);
  }

  /**
   * Room for a frame of `size` bytes; returns its offset in the chunk of
   * serial `tailSerial`. `liveBytes` (the stream's live frames before this
   * one) sizes a new chunk.
   */
  reserve(size: number, liveBytes: number): number {
    const chunks = (this.chunks ??= []);
    const tail = chunks[chunks.length - 1];
    if (tail !== undefined && this.tailUsed + size <= tail.length) {
      const at = this.tailUsed;
      this.tailUsed += size;
      return at;
    }
    // Up to an eighth more, at random: streams fed in step (a round-robin
    // publisher) would otherwise all need a new chunk in the same round, and
    // 2,000 allocations in one turn showed as a stall in the CPU profile.
    const half = liveBytes >> 1;
    const wanted = Math.min(
      MAX_CHUNK_BYTES,
      Math.max(
        chunks.length === 0 ? FIRST_CHUNK_BYTES : MIN_CHUNK_BYTES,
        half + Math.floor(Math.random() * (half >> 3)),
      ),
    );
    const chunk = Buffer.allocUnsafeSlow(Math.max(size, wanted));
    chunks.push(chunk);
    this.total += chunk.length;
    this.tailUsed = size;
    return 0;
  }

  /** The bytes of a frame that `reserve` placed. */
  frame(serial: number, at: number, size: number): Buffer {
    const chunk = (this.chunks as Buffer[])[serial - this.firstSerial] as Buffer;
    return chunk.subarray(at, at + size);
  }

  /** Lets go of the chunks older than `serial` (that of the oldest live frame). */
  dropBefore(serial: number): void {
    const chunks = this.chunks;
    if (chunks === null) return;
    while (this.firstSerial < serial && chunks.length > 1) {
      this.total -= (chunks.shift() as Buffer).length;
      this.firstSerial++;
    }
  }

  /** Lets go of every chunk (the stream holds no frame). */
  clear(): void {
    if (this.chunks === null) return;
    this.firstSerial += this.chunks.length;
    this.chunks = null;
    this.tailUsed = 0;
    this.total = 0;
  }
}
