/**
 * A pino destination that keeps every line written to it, for tests that
 * assert what reaches (or never reaches) the logs. Bounded: past `maxBytes`
 * the oldest lines are dropped.
 */
import { Writable } from 'node:stream';

export class LogCapture extends Writable {
  private lines: string[] = [];
  private bytes = 0;

  constructor(private readonly maxBytes = 4 * 1024 * 1024) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    const line = chunk.toString('utf8');
    this.lines.push(line);
    this.bytes += line.length;
    while (this.bytes > this.maxBytes && this.lines.length > 1) {
      this.bytes -= (this.lines.shift() as string).length;
    }
    done();
  }

  /** Everything kept, one log line per line. */
  get text(): string {
    return this.lines.join('');
  }
}
