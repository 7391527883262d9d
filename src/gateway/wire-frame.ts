/**
 * A server's WebSocket text frame (RFC 6455 section 5.2): final, unmasked,
 * opcode 1. Server frames are never masked, so the bytes of one message are
 * the same for every socket: the gateway frames an event once and writes the
 * same buffer to each connection of the fan-out ("encode once, write many"),
 * instead of ws framing and encoding it again per socket.
 *
 * Only for sockets without permessage-deflate (never negotiated here), and
 * only written between whole frames of ws (its sender writes each frame
 * synchronously, so nothing can interleave).
 */
export function encodeTextFrame(text: string): Buffer {
  const length = Buffer.byteLength(text, 'utf8');
  const headerLength = textFrameHeaderLength(length);
  const frame = Buffer.allocUnsafe(headerLength + length);
  writeTextFrameHeader(frame, 0, length);
  frame.write(text, headerLength, 'utf8');
  return frame;
}

/**
 * The same frame for the text `asciiHead + body + asciiTail`, written in
 * parts: the text is never joined into one string (which would copy `body`).
 * `asciiHead` and `asciiTail` must be ASCII.
 */
export function encodeTextFrameOf(asciiHead: string, body: string, asciiTail: string): Buffer {
  const length = asciiHead.length + Buffer.byteLength(body, 'utf8') + asciiTail.length;
  const frame = Buffer.allocUnsafe(textFrameHeaderLength(length) + length);
  writeTextFrameOf(frame, 0, length, asciiHead, body, asciiTail);
  return frame;
}

/**
 * The frame for the text `asciiHead + body`, `body` already UTF-8 bytes (a
 * payload read back from Redis): copied, never decoded.
 */
export function encodeTextFrameOfBytes(asciiHead: string, body: Uint8Array): Buffer {
  const length = asciiHead.length + body.length;
  const frame = Buffer.allocUnsafe(textFrameHeaderLength(length) + length);
  let end = writeTextFrameHeader(frame, 0, length);
  end += frame.write(asciiHead, end, 'latin1');
  frame.set(body, end);
  return frame;
}

/**
 * Writes the frame of `encodeTextFrameOf` into `target` at `at`; `length` is
 * the text's UTF-8 length. Returns the frame's size.
 */
export function writeTextFrameOf(
  target: Buffer,
  at: number,
  length: number,
  asciiHead: string,
  body: string,
  asciiTail: string,
): number {
  let end = at + writeTextFrameHeader(target, at, length);
  end += target.write(asciiHead, end, 'latin1');
  end += target.write(body, end, 'utf8');
  end += target.write(asciiTail, end, 'latin1');
  return end - at;
}

/** The header size of a frame of `length` payload bytes (2, 4 or 10). */
export function textFrameHeaderLength(length: number): number {
  return length < 126 ? 2 : length < 65_536 ? 4 : 10;
}

/** Writes the header of a frame of `length` payload bytes at `at`; returns its size. */
function writeTextFrameHeader(frame: Buffer, at: number, length: number): number {
  frame[at] = 0x81; // FIN + text
  if (length < 126) {
    frame[at + 1] = length;
    return 2;
  }
  if (length < 65_536) {
    frame[at + 1] = 126;
    frame.writeUInt16BE(length, at + 2);
    return 4;
  }
  frame[at + 1] = 127;
  frame.writeUInt32BE(Math.floor(length / 2 ** 32), at + 2);
  frame.writeUInt32BE(length >>> 0, at + 6);
  return 10;
}

/** The length of a frame's header as `encodeTextFrame` writes it (2, 4 or 10 bytes). */
export function wireHeaderLength(frame: Buffer): number {
  const length = (frame[1] ?? 0) & 0x7f;
  return length < 126 ? 2 : length === 126 ? 4 : 10;
}
