/**
 * Reads the JSON number that starts at `offset` of a Buffer, without decoding
 * the frame to a string or parsing it: the load generator's hot path. Handles
 * what the servers write for `seq` and the send timestamp: an optional minus,
 * digits, an optional fraction. No exponent (never produced for these values).
 */
const ZERO = 0x30;
const NINE = 0x39;
const DOT = 0x2e;
const MINUS = 0x2d;

export function readNumber(buffer, offset) {
  let i = offset;
  let sign = 1;
  if (buffer[i] === MINUS) {
    sign = -1;
    i++;
  }
  let value = 0;
  let byte = buffer[i];
  while (byte >= ZERO && byte <= NINE) {
    value = value * 10 + (byte - ZERO);
    byte = buffer[++i];
  }
  if (byte === DOT) {
    let scale = 0.1;
    byte = buffer[++i];
    while (byte >= ZERO && byte <= NINE) {
      value += (byte - ZERO) * scale;
      scale /= 10;
      byte = buffer[++i];
    }
  }
  return sign * value;
}
