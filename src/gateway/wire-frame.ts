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
  // The tail is a character or none (`}` after an event's data): stored
  // byte by byte, without a third call into the string writer.
  for (let i = 0; i < asciiTail.length; i++) target[end++] = asciiTail.charCodeAt(i);
  return end - at;
}

/** The header size of a frame of `length` payload bytes (2, 4 or 10). */
export function textFrameHeaderLength(length: number): number {
  return length < 126 ? 2 : length < 65_536 ? 4 : 10;
}

/** A text frame's first byte: FIN + opcode 1 (text). */
export const TEXT_FRAME_FIRST_BYTE = 0x81;

/**
 * True when `frame` is one whole text frame as `encodeTextFrame` writes it:
 * its first byte, and a header whose length is what follows it (a frame
 * built elsewhere, the Redis read script's, is checked before it is written).
 */
export function isWholeTextFrame(frame: Uint8Array): boolean {
  return textFrameEnd(frame, 0) === frame.length;
}

/**
 * Where the text frame that starts at `at` ends (its header and payload
 * within `bytes`), or -1 when no whole unmasked text frame starts there.
 */
export function textFrameEnd(bytes: Uint8Array, at: number): number {
  // A server frame is never masked: the second byte is the length alone.
  const short = bytes.length < at + 2 || bytes[at] !== TEXT_FRAME_FIRST_BYTE ? 128 : bytes[at + 1]!;
  let end: number;
  if (short < 126) {
    end = at + 2 + short;
  } else {
    const headerLength = short === 126 ? 4 : short === 127 ? 10 : 0;
    if (headerLength === 0 || bytes.length < at + headerLength) return -1;
    let length = 0;
    for (let i = at + 2; i < at + headerLength; i++) length = length * 256 + bytes[i]!;
    end = at + headerLength + length;
  }
  return end <= bytes.length ? end : -1;
}

/** Writes the header of a frame of `length` payload bytes at `at`; returns its size. */
export function writeTextFrameHeader(frame: Buffer, at: number, length: number): number {
  frame[at] = TEXT_FRAME_FIRST_BYTE;
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
