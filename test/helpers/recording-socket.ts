/**
 * A socket that records each write it is handed, one entry per system call
 * it would make (`_writev` gets a corked batch as one call): what tests of
 * write coalescing compare.
 */
import { Duplex } from 'node:stream';

export class RecordingSocket extends Duplex {
  readonly calls: string[][] = [];

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.calls.push([chunk.toString()]);
    done();
  }

  override _writev(chunks: { chunk: Buffer }[], done: () => void): void {
    this.calls.push(chunks.map(({ chunk }) => chunk.toString()));
    done();
  }
}
