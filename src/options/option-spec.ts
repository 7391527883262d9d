/**
 * An option declared once: its flag, its environment variable (and the old
 * names still read), its kind, its default, its help text and the key it is
 * read into. `readOptions` reads a table of them from parsed flags and the
 * environment; `helpText` and `defaultText` write `--help` and the docs.
 *
 * A flag wins over its variable, the variable over its aliases, an alias over
 * the default.
 */
import type { EmptyWhenAbsentKind, KindSettings, KindValues, OptionKind } from './option-kinds.js';
import { formatKind, readKind } from './option-kinds.js';

interface OptionSpecOf<K extends OptionKind> extends KindSettings {
  /** The long flag, e.g. `--port`. */
  readonly flag: `--${string}`;
  /** Its environment variable, the same name for every command that reads the setting. */
  readonly env: string;
  /** Older names of the variable, still read after `env` (documented as aliases). */
  readonly aliases?: readonly string[];
  readonly kind: K;
  /** Used when neither the flag nor a variable is given; none: the value is absent. */
  readonly default?: KindValues[K];
  /** One line for `--help` and the docs. */
  readonly description: string;
  /** May be given several times (`--api-key a --api-key b`). */
  readonly repeatable?: boolean;
  /** The property `readOptions` puts the value under. */
  readonly key: string;
}

/** One option of any kind; a table is `as const satisfies readonly OptionSpec[]`. */
export type OptionSpec = { [K in OptionKind]: OptionSpecOf<K> }[OptionKind];

type ValueOf<S extends OptionSpec> = S extends { kind: 'enum'; choices: readonly (infer C)[] }
  ? C
  : KindValues[S['kind']];

/** The values a table reads to, by key; absent ones are undefined unless their kind has an empty value. */
export type OptionValues<Specs extends readonly OptionSpec[]> = {
  [S in Specs[number] as S['key']]: S extends { default: unknown }
    ? ValueOf<S>
    : S['kind'] extends EmptyWhenAbsentKind
      ? ValueOf<S>
      : ValueOf<S> | undefined;
};

/** Raw values by flag property (what commander hands over): strings, string lists, booleans. */
export type RawFlags = Readonly<Record<string, string | readonly string[] | boolean | undefined>>;

/** The camelCase property commander gives a flag (`--max-body-size` → `maxBodySize`). */
export function flagProperty(flag: string): string {
  return flag.slice(2).replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** Where a value was found, as messages name it (`--port`, `PORT`), and its text. */
export interface FoundText {
  source: string;
  text: string;
}

/** The text of `spec` from the flags or the environment; undefined when neither gives one. */
function findText(
  spec: OptionSpec,
  flags: RawFlags,
  env: NodeJS.ProcessEnv,
): FoundText | undefined {
  const fromFlag = flags[flagProperty(spec.flag)];
  if (fromFlag !== undefined && !(Array.isArray(fromFlag) && fromFlag.length === 0)) {
    const text =
      typeof fromFlag === 'string' || typeof fromFlag === 'boolean'
        ? String(fromFlag)
        : fromFlag.join(',');
    return { source: spec.flag, text };
  }
  for (const name of [spec.env, ...(spec.aliases ?? [])]) {
    const fromEnv = env[name];
    if (fromEnv !== undefined && fromEnv !== '') return { source: name, text: fromEnv };
  }
  return undefined;
}

function emptyValue(kind: OptionKind): KindValues[EmptyWhenAbsentKind] | undefined {
  if (kind === 'boolean') return false;
  return kind === 'list' || kind === 'origins' || kind === 'ip-addresses' || kind === 'api-keys'
    ? []
    : undefined;
}

/**
 * Reads every option of `specs`, each with the reader of its kind.
 *
 * @throws OptionError naming the first bad flag or variable.
 */
export function readOptions<const Specs extends readonly OptionSpec[]>(
  specs: Specs,
  flags: RawFlags,
  env: NodeJS.ProcessEnv,
): { values: OptionValues<Specs>; sources: Readonly<Record<string, string>> } {
  const values: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  for (const spec of specs) {
    const found = findText(spec, flags, env);
    sources[spec.key] = found?.source ?? spec.flag;
    values[spec.key] =
      found === undefined
        ? (spec.default ?? emptyValue(spec.kind))
        : readKind(spec.kind, found.text, found.source, spec);
  }
  // Built key by key from `specs`, so it has exactly the shape `OptionValues` derives from them.
  return { values: values as OptionValues<Specs>, sources };
}

/** The default as written on the command line (`1h`, `64KiB`); empty when there is none. */
export function defaultText(spec: OptionSpec): string {
  return spec.default === undefined
    ? ''
    : formatKind(spec.kind, spec.default as KindValues[typeof spec.kind]);
}

/** What `--help` shows a flag takes, by kind. */
const PLACEHOLDERS: { readonly [K in OptionKind]: string } = {
  port: 'port',
  string: 'text',
  secret: 'secret',
  'pem-key': 'pem-or-path',
  url: 'url',
  list: 'list',
  origins: 'origins',
  'ip-addresses': 'addresses',
  'api-keys': 'key',
  'positive-integer': 'n',
  'non-negative-integer': 'n',
  duration: 'duration',
  seconds: 'seconds',
  size: 'size',
  boolean: '',
  enum: 'choice',
};

/** The flag as `--help` writes it: `--port <port>`, `--dev`. */
export function usage(spec: OptionSpec): string {
  return spec.kind === 'boolean' ? spec.flag : `${spec.flag} <${PLACEHOLDERS[spec.kind]}>`;
}

/** The `--help` line of an option: its description, variable, aliases and default. */
export function helpText(spec: OptionSpec): string {
  const names = [spec.env, ...(spec.aliases ?? [])].join(' or ');
  const fallback = defaultText(spec);
  return `${spec.description} (env ${names}${fallback === '' ? '' : `, default ${fallback}`})`;
}
