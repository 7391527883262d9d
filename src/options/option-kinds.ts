/**
 * The kinds of option value a command line takes, each with the one reader
 * that turns the text of a flag or environment variable into its value (or
 * refuses it with an `OptionError` naming the source), and the formatter that
 * writes a default back as text for `--help` and the docs.
 *
 * Messages never repeat the value of a `secret`, `url` or `api-keys` option
 * (JWT secret, Redis URL with a password, API key).
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { looksLikeJwt, MAX_API_KEY_LENGTH, MIN_API_KEY_LENGTH } from '../auth/api-keys.js';
import {
  formatDuration,
  formatSize,
  OptionError,
  parseDuration,
  parseSize,
  refuse,
} from './validators.js';

/** The value each kind reads to. */
export interface KindValues {
  /** 0 to 65535 (0: any free port). */
  port: number;
  /** Trimmed, not empty. */
  string: string;
  /** As given, never repeated in a message. */
  secret: string;
  /** PEM text, or the path of a PEM file (read at once). */
  'pem-key': string;
  /** An absolute URL of one of `protocols`; never repeated (it may hold a password). */
  url: string;
  /** Comma-separated (and, for a repeatable flag, repeated) items. */
  list: string[];
  /** A list of browser origins (`https://app.example.com`) or `*`. */
  origins: string[];
  /** A list of IP addresses. */
  'ip-addresses': string[];
  /** A list of API keys, each checked, none repeated in a message. */
  'api-keys': string[];
  'positive-integer': number;
  'non-negative-integer': number;
  /** A positive number of ms, written with a unit: `500ms`, `30s`, `5m`, `1h`, `2d`. */
  duration: number;
  /** A whole number of seconds, zero allowed: `0`, `5s`, `2m` (a bare number counts seconds). */
  seconds: number;
  /** A positive number of bytes: `65536`, `64KiB`, `1MiB`. */
  size: number;
  boolean: boolean;
  /** One of `choices`. */
  enum: string;
}

export type OptionKind = keyof KindValues;

/** Kinds whose absent value is empty (`[]`, `false`) rather than undefined. */
export type EmptyWhenAbsentKind = 'list' | 'origins' | 'ip-addresses' | 'api-keys' | 'boolean';

/** What a reader may look up on the option beside its text. */
export interface KindSettings {
  readonly choices?: readonly string[];
  readonly protocols?: readonly string[];
}

type Reader<K extends OptionKind> = (
  text: string,
  source: string,
  settings: KindSettings,
) => KindValues[K];

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/** `a, b or c` */
function spoken(items: readonly string[]): string {
  return items.length < 2
    ? items.join('')
    : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1] as string}`;
}

/** Examples in duration messages: only values the kind accepts (no `500ms` for `seconds`). */
export const DURATION_EXAMPLES = {
  duration: ['500ms', '30s', '5m', '1h'],
  seconds: ['0', '5s', '2m'],
} as const;

function readInteger(text: string, source: string, min: 0 | 1): number {
  const trimmed = text.trim();
  const value = /^\d+$/.test(trimmed) ? Number(trimmed) : NaN;
  if (!Number.isSafeInteger(value) || value < min) {
    refuse(source, min === 0 ? 'a non-negative integer' : 'a positive integer', `"${text}"`);
  }
  return value;
}

const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on']);
const FALSE_WORDS = new Set(['0', 'false', 'no', 'off', '']);

const READERS: { readonly [K in OptionKind]: Reader<K> } = {
  port(text, source) {
    const value = /^\d{1,5}$/.test(text.trim()) ? Number(text.trim()) : NaN;
    if (!(value >= 0 && value <= 65535)) refuse(source, 'an integer from 0 to 65535', `"${text}"`);
    return value;
  },
  string(text, source) {
    const value = text.trim();
    if (value === '') throw new OptionError(`${source} must not be empty`);
    return value;
  },
  secret: (text) => text,
  'pem-key'(text, source) {
    // Not trimmed: a PEM keeps its final newline.
    if (text.trimStart().startsWith('-----BEGIN')) return text;
    try {
      return readFileSync(text.trim(), 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new OptionError(
        `${source} is neither a PEM key nor a readable file: "${text}" (${code})`,
      );
    }
  },
  url(text, source, { protocols = ['https:'] }) {
    const value = text.trim();
    let protocol = '';
    try {
      protocol = new URL(value).protocol;
    } catch {
      // Reported below; the URL may hold a password, so it is not repeated.
    }
    if (!protocols.includes(protocol)) {
      const names = protocols.map((name) => `${name}//`);
      throw new OptionError(`${source} must be a ${spoken(names)} URL`);
    }
    return value;
  },
  list: (text) => splitList(text),
  origins(text, source) {
    const origins = splitList(text);
    for (const origin of origins) {
      if (origin === '*') continue;
      let parsed: string | null = null;
      try {
        parsed = new URL(origin).origin;
      } catch {
        parsed = null;
      }
      if (parsed !== origin) {
        throw new OptionError(
          `${source}: "${origin}" is not an origin like https://app.example.com`,
        );
      }
    }
    return origins;
  },
  'ip-addresses'(text, source) {
    const addresses = splitList(text);
    for (const address of addresses) {
      if (isIP(address) === 0)
        throw new OptionError(`${source}: "${address}" is not an IP address`);
    }
    return addresses;
  },
  'api-keys'(text, source) {
    const keys = splitList(text);
    keys.forEach((key, index) => {
      const which = `${source} #${index + 1}`;
      if (key.length < MIN_API_KEY_LENGTH || key.length > MAX_API_KEY_LENGTH) {
        throw new OptionError(
          `${which}: an API key must be ${MIN_API_KEY_LENGTH}-${MAX_API_KEY_LENGTH} characters`,
        );
      }
      if (/\s/.test(key)) throw new OptionError(`${which}: an API key must not contain whitespace`);
      if (looksLikeJwt(key)) throw new OptionError(`${which}: an API key must not look like a JWT`);
    });
    return keys;
  },
  'positive-integer': (text, source) => readInteger(text, source, 1),
  'non-negative-integer': (text, source) => readInteger(text, source, 0),
  duration(text, source) {
    const ms = parseDuration(text);
    if (ms === null || ms <= 0) {
      refuse(source, `a duration like ${spoken(DURATION_EXAMPLES.duration)}`, `"${text}"`);
    }
    return ms;
  },
  seconds(text, source) {
    const ms = /^\s*\d+\s*$/.test(text) ? parseDuration(`${text.trim()}s`) : parseDuration(text);
    if (ms === null || ms % 1000 !== 0) {
      const what = `a whole number of seconds like ${spoken(DURATION_EXAMPLES.seconds)}`;
      refuse(source, what, `"${text}"`);
    }
    return ms / 1000;
  },
  size(text, source) {
    const bytes = parseSize(text);
    if (bytes === null || bytes <= 0) {
      refuse(source, 'a size like 65536, 64KiB or 1MiB', `"${text}"`);
    }
    return bytes;
  },
  boolean(text, source) {
    const word = text.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
    return refuse(source, 'true or false', `"${text}"`);
  },
  enum(text, source, { choices = [] }) {
    const value = text.trim().toLowerCase();
    if (!choices.includes(value)) {
      const what = choices.length > 2 ? `one of ${choices.join(', ')}` : spoken(choices);
      refuse(source, what, `"${text}"`);
    }
    return value;
  },
};

/** Reads `text` as a value of `kind`; throws `OptionError` naming `source`. */
export function readKind<K extends OptionKind>(
  kind: K,
  text: string,
  source: string,
  settings: KindSettings = {},
): KindValues[K] {
  return (READERS[kind] as Reader<K>)(text, source, settings);
}

/** A default as `--help` and the docs write it: `1h`, `64KiB`, `5s`, `8080`. */
export function formatKind<K extends OptionKind>(kind: K, value: KindValues[K]): string {
  switch (kind) {
    case 'duration':
      return formatDuration(value as number);
    case 'seconds':
      return `${value as number}s`;
    case 'size':
      return formatSize(value as number);
    default:
      return Array.isArray(value) ? value.join(',') : String(value);
  }
}
