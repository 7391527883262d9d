/**
 * Options of `npm run soak` and the chaos timings derived from them. The
 * timings of the 10-minute run are the ones issue 17 names (a node SIGKILLed
 * every 20-40 s); shorter runs scale them down, with a floor so that a node
 * has time to come back and its clients to move before the next kill.
 */
import { parseArgs } from 'node:util';

export const HELP = `Usage: npm run soak -- [options]

Three gateway nodes on one redis-server (all on free loopback ports), simulated
users with 1-3 WebSocket connections each, agents publishing runs over the HTTP
API, and chaos (node SIGKILLs, Redis restarts, dropped sockets, stalled
readers). Prints per-user published vs received, RSS per node and the error
counters; the last line is a JSON summary. Exit code 1 when an event was lost,
duplicated or reordered (or a gap is unexplained), 2 on bad usage.

Options:
  --minutes <n>                  publishing time (default 10; fractions allowed)
  --users <n>                    simulated users (default 500)
  --rate <n>                     events per second, all users (default users x 0.4)
  --nodes <n>                    gateway nodes (default 3)
  --redis-everysec-restart       switch Redis to appendfsync everysec and SIGKILL it
                                 once more (default on)
  --no-redis-everysec-restart    only the appendfsync always restart
  --redis-rdb-restart            last, a Redis crash that loses a few seconds of
                                 acknowledged writes (snapshot only): shows what a
                                 roll-back does to the streams (default off)
  --catch-up-seconds <n>         how long clients may take to catch up at the end
                                 (default 60)
  --per-user                     print every user's line, not only those with a problem
  -h, --help                     this text
`;

function positive(name, text, { integer = false } = {}) {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new Error(
      `--${name} must be a positive ${integer ? 'integer' : 'number'}, got "${text}"`,
    );
  }
  return value;
}

export function parseSoakOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      minutes: { type: 'string', default: '10' },
      users: { type: 'string', default: '500' },
      rate: { type: 'string' },
      nodes: { type: 'string', default: '3' },
      'redis-everysec-restart': { type: 'boolean' },
      'no-redis-everysec-restart': { type: 'boolean' },
      'redis-rdb-restart': { type: 'boolean', default: false },
      'catch-up-seconds': { type: 'string', default: '60' },
      'per-user': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values['redis-everysec-restart'] && values['no-redis-everysec-restart']) {
    throw new Error('--redis-everysec-restart and --no-redis-everysec-restart exclude each other');
  }
  const users = positive('users', values.users, { integer: true });
  return {
    help: values.help,
    minutes: positive('minutes', values.minutes),
    users,
    rate: values.rate === undefined ? users * 0.4 : positive('rate', values.rate),
    nodes: positive('nodes', values.nodes, { integer: true }),
    everysecRestart: !values['no-redis-everysec-restart'],
    rdbRestart: values['redis-rdb-restart'],
    catchUpMs: positive('catch-up-seconds', values['catch-up-seconds']) * 1000,
    perUser: values['per-user'],
  };
}

/** Chaos timings (ms) for a run publishing for `minutes`. */
export function chaosPlan({ minutes, everysecRestart, rdbRestart }) {
  const runMs = minutes * 60_000;
  const scale = Math.min(1, minutes / 10);
  return {
    runMs,
    nodeKillMs: [Math.max(8_000, 20_000 * scale), Math.max(15_000, 40_000 * scale)],
    nodeDownMs: [300, 2_000],
    redisAlwaysAtMs: runMs * 0.3,
    everysecRestart,
    redisSwitchAtMs: runMs * 0.55,
    redisEverysecAtMs: runMs * 0.7,
    rdbRestart,
    redisRdbAtMs: runMs * 0.8,
    rdbLossWindowMs: 3_000,
    redisDownMs: [500, 1_500],
    dropEveryMs: [500, 1_500],
    stallEveryMs: [1_000, 3_000],
    // Past the default ack timeout (10 s): some stalled readers get 4408.
    stallMaxMs: 15_000,
    // RSS and counters: often enough to see each node incarnation (20-40 s) grow or not.
    sampleMs: minutes <= 2 ? 2_000 : 5_000,
    // Drift is only measured on processes that lived this long (over the second
    // half of their life): a node spends its first minute filling its heap.
    rssMinLifeMs: 120_000,
  };
}
