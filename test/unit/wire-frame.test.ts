import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as wsModule from 'ws';
import { createJwtAuthenticator } from '../../src/auth/jwt-authenticator.js';
import { createGateway } from '../../src/gateway/gateway.js';
import { encodeTextFrame } from '../../src/gateway/wire-frame.js';
import { createRawFrameServer } from '../../src/gateway/websocket-endpoint.js';

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

/** ws's own framing of a server text message (no mask, no extension). */
const { Sender } = wsModule as unknown as {
  Sender: {
    frame(
      data: Buffer,
      options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean },
    ): Buffer[];
  };
};

describe('encodeTextFrame against ws', () => {
  it.each([0, 1, 125, 126, 65_535, 65_536])(
    'writes the bytes ws would write for a %i-byte text message',
    (size) => {
      const text = 'é'.repeat(Math.floor(size / 2)) + 'x'.repeat(size % 2);
      const data = Buffer.from(text, 'utf8');
      const reference = Buffer.concat(
        Sender.frame(data, { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false }),
      );
      expect(encodeTextFrame(text).equals(reference)).toBe(true);
    },
  );
});

describe('the pre-encoded write path refuses compression', () => {
  it.each([true, {}, { threshold: 0 }])('refuses perMessageDeflate: %o', (perMessageDeflate) => {
    expect(() => createRawFrameServer({ noServer: true, perMessageDeflate })).toThrow(
      /perMessageDeflate must be false/,
    );
    expect(() =>
      createGateway({
        authenticator: createJwtAuthenticator({ secret: 'x'.repeat(32) }),
        // Not a gateway option: a caller passing it anyway must hear it is refused.
        ...({ perMessageDeflate } as object),
      }),
    ).toThrow(/perMessageDeflate must be false/);
  });

  it('builds the server without it', () => {
    const server = createRawFrameServer({ noServer: true, perMessageDeflate: false });
    expect(server.options.perMessageDeflate).toBe(false);
    server.close();
  });
});
