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
  const { frame, headerLength } = allocateTextFrame(length);
  frame.write(text, headerLength, 'utf8');
  return frame;
}

/**
 * The same frame for the text `asciiHead + body + asciiTail`, written in
 * parts: the text is never joined into one string (which would copy `body`).
 * `asciiHead` and `asciiTail` must be ASCII.
 */
export function encodeTextFrameOf(asciiHead: string, body: string, asciiTail: string): Buffer {
  const bodyBytes = Buffer.byteLength(body, 'utf8');
  const length = asciiHead.length + bodyBytes + asciiTail.length;
  const { frame, headerLength } = allocateTextFrame(length);
  let at = headerLength + frame.write(asciiHead, headerLength, 'latin1');
  at += frame.write(body, at, 'utf8');
  frame.write(asciiTail, at, 'latin1');
  return frame;
}

function allocateTextFrame(length: number): { frame: Buffer; headerLength: number } {
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x81; // FIN + text
  if (length < 126) {
    frame[1] = length;
  } else if (length < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  return { frame, headerLength };
}

/** The length of a frame's header as `encodeTextFrame` writes it (2, 4 or 10 bytes). */
export function wireHeaderLength(frame: Buffer): number {
  const length = (frame[1] ?? 0) & 0x7f;
  return length < 126 ? 2 : length === 126 ? 4 : 10;
}
