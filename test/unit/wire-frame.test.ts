import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as wsModule from 'ws';
import { encodeTextFrame } from '../../src/gateway/wire-frame.js';

/** ws's frame parser; exported by ws at runtime but not in @types/ws. */
interface FrameReceiver {
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  write(chunk: Buffer): void;
}
const { Receiver } = wsModule as unknown as {
  Receiver: new (options: { isServer: boolean; skipUTF8Validation: boolean }) => FrameReceiver;
};

/** Parses a frame with ws's own receiver (client side), the reference for the wire format. */
function parse(frame: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const receiver = new Receiver({ isServer: false, skipUTF8Validation: false });
    receiver.on('message', (data: Buffer, isBinary: boolean) =>
      isBinary ? reject(new Error('binary')) : resolve(data.toString('utf8')),
    );
    receiver.on('error', reject);
    receiver.write(frame);
  });
}

describe('encodeTextFrame', () => {
  it.each([0, 1, 125, 126, 127, 65_535, 65_536, 70_000])(
    'frames a payload of %i bytes as ws reads it',
    async (size) => {
      const text = 'x'.repeat(size);
      expect(await parse(encodeTextFrame(text))).toBe(text);
    },
  );

  it('round-trips any unicode text exactly', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'grapheme', maxLength: 300 }), async (text) => {
        expect(await parse(encodeTextFrame(text))).toBe(text);
      }),
      { numRuns: 200 },
    );
  });
});
