#!/usr/bin/env node
/**
 * The `agentsocket` command (PROTOCOL.md section 6):
 *
 * - `agentsocket serve [flags]`: runs a gateway node; every flag has an
 *   environment variable (`SERVE_OPTIONS`, which also writes `--help`). SIGTERM or SIGINT drains and
 *   exits 0; a second signal, or a drain longer than `--shutdown-timeout`,
 *   exits 1.
 * - `agentsocket token --user U [--secret S] [--ttl 1h]`: prints a dev token.
 * - `agentsocket publish --url … --api-key K --user U --event E …`: publishes
 *   one event through the HTTP API and prints the JSON answer.
 *
 * Exit codes: 0 success, 1 failure (refused publish, unreachable server,
 * failed start), 2 bad usage or configuration.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { mintDevToken } from '../auth/dev-token.js';
import { createLogger } from '../observability/logger.js';
import { MAX_PUBLISH_WAIT_MS } from '../http/api-routes.js';
import { readOptions, type RawFlags } from '../options/option-spec.js';
import { OptionError, parseDuration } from '../options/validators.js';
import { parseServeConfig, type ServerConfig } from '../server/config.js';
import { API_KEY_OPTION, JWT_SECRET_ENV, SERVE_OPTIONS } from '../server/serve-options.js';
import { startServer } from '../server/standalone.js';
import { registerOptions } from './register-options.js';

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

function packageVersion(): string {
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

/** Exits with a one-line message on stderr. */
function die(message: string, code: number): never {
  process.stderr.write(`agentsocket: ${message}\n`);
  process.exit(code);
}

/**
 * Prints what `--dev` generated, once, on stderr: never through the logger,
 * so these secrets reach no log pipeline.
 */
function printDevSecrets(config: ServerConfig, url: string): void {
  const { jwtSecret, apiKey } = config.generated;
  if (jwtSecret === undefined && apiKey === undefined) return;
  const lines = ['', 'agentsocket --dev: generated for this run only (not logged):'];
  if (jwtSecret !== undefined) lines.push(`  JWT secret: ${jwtSecret}`);
  if (apiKey !== undefined) lines.push(`  API key:    ${apiKey}`);
  lines.push(`  demo page:  ${url}/`, '');
  process.stderr.write(`${lines.join('\n')}\n`);
}

async function serve(flags: RawFlags): Promise<void> {
  let config: ServerConfig;
  try {
    config = parseServeConfig(flags, process.env);
  } catch (error) {
    if (error instanceof OptionError) die(error.message, EXIT_USAGE);
    throw error;
  }
  const logger = createLogger({ level: config.logLevel });
  let server;
  try {
    server = await startServer(config, { logger });
  } catch (error) {
    logger.fatal({ err: (error as Error).message }, 'failed to start');
    process.exit(EXIT_FAILURE);
  }
  printDevSecrets(config, server.url);

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without finishing the drain');
      process.exit(EXIT_FAILURE);
    }
    stopping = true;
    logger.info({ signal }, 'signal received: draining');
    const deadline = setTimeout(() => {
      logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'drain timed out: exiting');
      process.exit(EXIT_FAILURE);
    }, config.shutdownTimeoutMs);
    deadline.unref();
    server.close().then(
      () => process.exit(0),
      (error: Error) => {
        logger.error({ err: error.message }, 'drain failed');
        process.exit(EXIT_FAILURE);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

interface TokenFlags {
  user: string;
  secret?: string;
  ttl: string;
  issuer?: string;
  audience?: string;
}

async function token(flags: TokenFlags): Promise<void> {
  const secret = flags.secret ?? process.env[JWT_SECRET_ENV];
  if (secret === undefined || secret === '') {
    die(`--secret (or ${JWT_SECRET_ENV}) is required`, EXIT_USAGE);
  }
  const ttlMs = parseDuration(flags.ttl);
  if (ttlMs === null || ttlMs < 1000 || ttlMs % 1000 !== 0) {
    die(
      `--ttl must be a whole number of seconds like 30s, 15m or 1h, got "${flags.ttl}"`,
      EXIT_USAGE,
    );
  }
  try {
    const jwt = await mintDevToken({
      secret,
      userId: flags.user,
      ttlSeconds: ttlMs / 1000,
      ...(flags.issuer !== undefined ? { issuer: flags.issuer } : {}),
      ...(flags.audience !== undefined ? { audience: flags.audience } : {}),
    });
    process.stdout.write(`${jwt}\n`);
  } catch (error) {
    die((error as Error).message, EXIT_USAGE);
  }
}

interface PublishFlags {
  url: string;
  /** `--api-key`, given once or more (the first is used). */
  apiKey?: string[];
  user: string;
  event: string;
  data?: string;
  runId?: string;
  threadId?: string;
  id?: string;
  critical?: boolean;
  wait?: string;
}

/**
 * The API key of `publish`: the setting `serve` reads (`API_KEY_OPTION`), same
 * flag, same variable and alias; of a list, the first key.
 */
function publishApiKey(flags: PublishFlags): string {
  let apiKeys: readonly string[];
  try {
    apiKeys = readOptions([API_KEY_OPTION], { apiKey: flags.apiKey }, process.env).values.apiKeys;
  } catch (error) {
    if (error instanceof OptionError) die(error.message, EXIT_USAGE);
    throw error;
  }
  const [apiKey] = apiKeys;
  if (apiKey === undefined) {
    die(`${API_KEY_OPTION.flag} (or ${API_KEY_OPTION.env}) is required`, EXIT_USAGE);
  }
  return apiKey;
}

async function publish(flags: PublishFlags): Promise<void> {
  const apiKey = publishApiKey(flags);
  let data: unknown;
  if (flags.data !== undefined) {
    try {
      data = JSON.parse(flags.data) as unknown;
    } catch {
      die('--data must be JSON', EXIT_USAGE);
    }
  }
  if (
    flags.wait !== undefined &&
    (!/^\d+$/.test(flags.wait) || Number(flags.wait) > MAX_PUBLISH_WAIT_MS)
  ) {
    die(`--wait must be an integer number of ms from 0 to ${MAX_PUBLISH_WAIT_MS}`, EXIT_USAGE);
  }
  let base: URL;
  try {
    base = new URL(flags.url);
  } catch {
    die(`--url must be an http(s) URL, got "${flags.url}"`, EXIT_USAGE);
  }
  const target = new URL(
    `v1/users/${encodeURIComponent(flags.user)}/events`,
    base.href.endsWith('/') ? base : `${base.href}/`,
  );
  if (flags.wait !== undefined) target.searchParams.set('wait', flags.wait);
  const body = {
    event: flags.event,
    ...(data !== undefined ? { data } : {}),
    ...(flags.runId !== undefined ? { runId: flags.runId } : {}),
    ...(flags.threadId !== undefined ? { threadId: flags.threadId } : {}),
    ...(flags.id !== undefined ? { id: flags.id } : {}),
    ...(flags.critical !== undefined ? { critical: flags.critical } : {}),
  };
  let response: Response;
  try {
    response = await fetch(target, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    die(
      `cannot reach ${base.origin}: ${cause?.code ?? cause?.message ?? 'network error'}`,
      EXIT_FAILURE,
    );
  }
  const text = await response.text();
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  if (!response.ok) process.exitCode = EXIT_FAILURE;
}

function buildProgram(): Command {
  const program = new Command()
    .name('agentsocket')
    .description('Real-time gateway for AI agent events')
    .version(packageVersion())
    .showHelpAfterError()
    .exitOverride((error) => {
      // Help and version exit 0; every usage error exits 2.
      process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE);
    });

  registerOptions(
    program
      .command('serve')
      .description('run a gateway node (every flag has an environment variable)'),
    SERVE_OPTIONS,
  ).action((flags: RawFlags) => serve(flags));

  program
    .command('token')
    .description('print an HS256 user token for development')
    .requiredOption('--user <userId>', 'the user id (sub)')
    .option('--secret <secret>', `HS256 secret (env ${JWT_SECRET_ENV})`)
    .option('--ttl <duration>', 'lifetime, like 15m or 1h', '1h')
    .option('--issuer <iss>', 'iss claim')
    .option('--audience <aud>', 'aud claim')
    .action((flags: TokenFlags) => token(flags));

  const publishCommand = program
    .command('publish')
    .description('publish one event to a user through the HTTP API and print the answer')
    .option(
      '--url <url>',
      'base URL of the gateway (env AGENTSOCKET_URL)',
      process.env.AGENTSOCKET_URL ?? 'http://127.0.0.1:8080',
    );
  registerOptions(publishCommand, [{ ...API_KEY_OPTION, description: 'API key' }]);
  publishCommand
    .requiredOption('--user <userId>', 'the user to publish to')
    .requiredOption('--event <name>', 'event name, e.g. agent_thinking')
    .option('--data <json>', 'event data as JSON')
    .option('--run-id <id>', 'runId of the agent run')
    .option('--thread-id <id>', 'threadId')
    .option('--id <id>', 'idempotency id')
    .option('--critical', 'require an ack from the client')
    .option('--no-critical', 'never require an ack, even for an agent event')
    .option('--wait <ms>', `wait up to this many ms for delivery (max ${MAX_PUBLISH_WAIT_MS})`)
    .action((flags: PublishFlags) => publish(flags));

  return program;
}

buildProgram()
  .parseAsync(process.argv)
  .catch((error: unknown) => die((error as Error).message ?? String(error), EXIT_FAILURE));
