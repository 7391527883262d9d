/**
 * The ASCII parts of an event frame written straight into its bytes: the
 * constant keys, the digits of seq and ts, the id. `EventFrameWriter` uses
 * them so that framing an event builds no string for its prefix: a template
 * of seq, id and ts, joined with the payload's head and then flattened by
 * `Buffer.write`, was about 400 of the 1,900 bytes a publish allocated, and
 * turning the time stamp (a heap number to V8) into text was a sizeable part
 * of the time (docs/performance.md, "Seventh pass").
 */

/** `text` as bytes, for a constant written often. `text` must be ASCII. */
export function asciiBytes(text: string): Uint8Array {
  return Uint8Array.from(text, (char) => char.charCodeAt(0));
}

/** Copies `bytes` into `target` at `at`; returns the end. */
export function putBytes(target: Uint8Array, at: number, bytes: Uint8Array): number {
  // A loop, not `set`: the parts are a few bytes, and a builtin call costs more.
  for (let i = 0; i < bytes.length; i++) target[at + i] = bytes[i]!;
  return at + bytes.length;
}

/** The length of `String(value)`: its digits for a non-negative safe integer. */
export function decimalLength(value: number): number {
  if (!isCount(value)) return String(value).length;
  let digits = 1;
  for (let limit = 10; value >= limit; limit *= 10) digits++;
  return digits;
}

/** Writes `String(value)` at `at` (digits, for a non-negative safe integer); returns the end. */
export function putDecimal(target: Buffer, at: number, value: number): number {
  if (!isCount(value)) return at + target.write(String(value), at, 'latin1');
  const end = at + decimalLength(value);
  let rest = value;
  for (let i = end - 1; i >= at; i--) {
    const next = Math.floor(rest / 10);
    target[i] = 0x30 + (rest - next * 10);
    rest = next;
  }
  return end;
}

/** Seqs and millisecond time stamps: what `putDecimal` writes without a string. */
function isCount(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}
