/**
 * One validator per kind of option value, and one error type for all of them.
 *
 * Two doors lead in: a library option arrives as a number (`positiveInteger`,
 * `nonNegativeInteger`), a command-line flag or environment variable as text
 * (`parseDuration`, `parseSize` and the readers of `option-kinds.ts`). Either
 * way a bad value throws `OptionError` naming where it came from
 * (`option historySize`, `--history-size`, `AGENTSOCKET_HISTORY_SIZE`).
 */

/**
 * A bad option value or a bad combination of options. A `TypeError`, so code
 * that caught the library's `TypeError`s before still catches it; the CLI
 * prints the message and exits 2.
 */
export class OptionError extends TypeError {
  override readonly name = 'OptionError';
}

/** Throws `OptionError("<name> must be <what>, got <shown>")`. */
export function refuse(name: string, what: string, shown: string): never {
  throw new OptionError(`${name} must be ${what}, got ${shown}`);
}

/** A safe integer of at least 1 (a size, a count, a positive number of ms). */
export function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) refuse(name, 'a positive integer', String(value));
  return value;
}

/** A safe integer of at least 0. */
export function nonNegativeInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    refuse(name, 'a non-negative integer', String(value));
  }
  return value;
}

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
/** Units of a duration, largest first (`formatDuration` picks the largest exact one). */
const DURATION_UNITS: readonly (readonly [string, number])[] = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
  ['ms', 1],
];
const DURATION_MS = new Map(DURATION_UNITS);

/** `500ms`, `30s`, `5m`, `1h`, `2d` → ms; null when not a duration. */
export function parseDuration(text: string): number | null {
  const match = DURATION.exec(text.trim());
  if (!match) return null;
  const ms = Number(match[1]) * (DURATION_MS.get(match[2] as string) as number);
  return Number.isSafeInteger(ms) ? ms : null;
}

/** ms → the shortest text `parseDuration` reads back: 3 600 000 → `1h`, 1500 → `1500ms`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const [unit, size] = DURATION_UNITS.find(([, size]) => ms % size === 0) as [string, number];
  return `${ms / size}${unit}`;
}

const SIZE = /^(\d+)(b|kib|mib|gib)?$/i;
const SIZE_UNITS: readonly (readonly [string, number])[] = [
  ['GiB', 1024 ** 3],
  ['MiB', 1024 ** 2],
  ['KiB', 1024],
];
const SIZE_BYTES = new Map<string, number>([
  ['b', 1],
  ...SIZE_UNITS.map(([unit, bytes]) => [unit.toLowerCase(), bytes] as const),
]);

/** `65536`, `64KiB`, `1MiB` → bytes; null when not a size. */
export function parseSize(text: string): number | null {
  const match = SIZE.exec(text.trim());
  if (!match) return null;
  const bytes = Number(match[1]) * (SIZE_BYTES.get((match[2] ?? 'b').toLowerCase()) as number);
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** bytes → the shortest text `parseSize` reads back: 65 536 → `64KiB`, 1000 → `1000`. */
export function formatSize(bytes: number): string {
  const unit = SIZE_UNITS.find(([, size]) => bytes >= size && bytes % size === 0);
  return unit === undefined ? String(bytes) : `${bytes / unit[1]}${unit[0]}`;
}
