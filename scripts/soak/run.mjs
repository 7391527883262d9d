#!/usr/bin/env node
/**
 * `npm run soak -- --minutes N`: the chaos soak of issue 17 over the built
 * `dist/` (docs/reliability.md). One redis-server and N gateway nodes on free
 * loopback ports, simulated users and agents, chaos, then a catch-up phase and
 * the verdict. Every child process is killed by its pid at the end, on error
 * and on SIGINT. The last line printed is the JSON summary.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SoakChaos } from './soak-chaos.mjs';
import { SoakDevice } from './soak-device.mjs';
import { SoakMonitor, peakTrend } from './soak-monitor.mjs';
import { HELP, chaosPlan, parseSoakOptions } from './soak-options.mjs';
import { SoakNode, SoakRedis, freePort } from './soak-processes.mjs';
import { SoakPublisher } from './soak-publisher.mjs';
import { caughtUp as deviceCaughtUp, checkUsers, failures, renderReport } from './soak-report.mjs';

const DIST = new URL('../../dist/', import.meta.url);
/** Devices connecting at once while the run starts. */
const CONNECT_WAVE = 50;
const PROGRESS_EVERY_MS = 10_000;
/** Time the publisher gets, after the chaos stops, to get an answer for every event. */
const DRAIN_MS = 30_000;

const log = (line) => console.log(line);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function fail(message, code = 2) {
  console.error(`soak: ${message}`);
  process.exit(code);
}

let options;
try {
  options = parseSoakOptions(process.argv.slice(2));
} catch (error) {
  fail(`${error.message}\n\n${HELP}`);
}
if (options.help) {
  console.log(HELP);
  process.exit(0);
}
if (!existsSync(fileURLToPath(new URL('cli/main.js', DIST)))) {
  fail('dist/ is missing: run `npm run build` first (npm run soak does)');
}
const probe = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
if (probe.error !== undefined || probe.status !== 0) {
  fail('redis-server is not on PATH (apt-get install redis-server)');
}

const { mintDevToken } = await import(new URL('auth/dev-token.js', DIST).href);
const { ApiKeys } = await import(new URL('auth/api-keys.js', DIST).href);

const plan = chaosPlan(options);
const secret = randomBytes(32).toString('base64url');
const apiKey = ApiKeys.generate();
const redis = await SoakRedis.start('always');
const nodeEnv = {
  AGENTSOCKET_JWT_SECRET: secret,
  AGENTSOCKET_API_KEYS: apiKey,
  AGENTSOCKET_REDIS_URL: redis.url,
  // Every simulated client comes from 127.0.0.1: the per-IP limits, meant for
  // one browser or one NAT, would refuse the whole population.
  AGENTSOCKET_HANDSHAKES_PER_IP: '100000',
  AGENTSOCKET_MAX_CONNECTIONS_PER_IP: '100000',
};
const nodes = [];
for (let i = 0; i < options.nodes; i++) nodes.push(new SoakNode(i, await freePort(), nodeEnv));

let users = [];
const killAll = () => {
  for (const user of users) for (const device of user.devices) device.stop();
  for (const node of nodes) node.killSync();
  redis.killSync();
  redis.removeDir();
};
process.on('exit', killAll);
process.on('SIGINT', () => {
  console.error('soak: interrupted');
  process.exit(130);
});

const startedAt = Date.now();
await Promise.all(nodes.map((node) => node.start()));
log(
  `soak: redis ${redis.url} (pid ${redis.pid}), nodes ${nodes.map((n) => `${n.url} (pid ${n.pid})`).join(', ')}`,
);

// Users and their 1-3 devices, each connecting to a random node.
const pickNode = () => nodes[Math.floor(Math.random() * nodes.length)];
users = await Promise.all(
  Array.from({ length: options.users }, async (_, i) => {
    const id = `u${i}`;
    const user = {
      id,
      token: await mintDevToken({ secret, userId: id, ttlSeconds: 24 * 3600 }),
      devices: [],
      run: { number: 1, step: 0, thinking: 0 },
      nextCounter: 1,
      busy: false,
      issued: [],
      confirmed: new Map(),
      refused: [],
    };
    const count = 1 + Math.floor(Math.random() * 3);
    for (let d = 0; d < count; d++) {
      user.devices.push(new SoakDevice(user, d, () => pickNode().wsUrl));
    }
    return user;
  }),
);
const devices = users.flatMap((user) => user.devices);
for (let i = 0; i < devices.length; i += CONNECT_WAVE) {
  const wave = devices.slice(i, i + CONNECT_WAVE);
  for (const device of wave) device.connect();
  await waitUntil(() => wave.every((d) => d.connected), 60_000, 'a wave of devices to connect');
}
log(`soak: ${users.length} users, ${devices.length} connections open`);

const monitor = new SoakMonitor({ nodes, redis, apiKey, sampleMs: plan.sampleMs });
const publisher = new SoakPublisher({ users, pickNode, apiKey, rate: options.rate });
const chaos = new SoakChaos({ nodes, redis, devices, plan, log });
monitor.start();
publisher.start();
chaos.start();
log(
  `soak: publishing ${options.rate} events/s for ${options.minutes} min; chaos ${JSON.stringify(plan)}`,
);

const progress = setInterval(() => {
  const confirmed = users.reduce((a, u) => a + u.confirmed.size, 0);
  const open = devices.filter((d) => d.connected).length;
  log(
    `soak: +${Math.round((Date.now() - startedAt) / 1000)}s confirmed ${confirmed}, in flight ${publisher.inFlight.size}, connections ${open}/${devices.length}, nodes up ${nodes.filter((n) => n.alive).length}`,
  );
}, PROGRESS_EVERY_MS);

await sleep(plan.runMs);
publisher.stopIssuing();
log('soak: publishing stopped; waiting for the chaos to end and the publishes to be answered');
await chaos.stop();
const unanswered = await publisher.drain(Date.now() + DRAIN_MS);
log(`soak: publisher drained (${unanswered} events never answered); clients catching up`);
const caughtUp = await waitUntil(
  () => users.every((user) => user.devices.every((d) => d.connected && deviceCaughtUp(user, d))),
  options.catchUpMs,
  null,
);
clearInterval(progress);
await monitor.sample();
monitor.stop();

const check = checkUsers(users);
const counters = monitor.totals();
const rss = monitor.rssSeries(plan.rssMinLifeMs);
/** Incarnations that lived a minute reached their plateau (the RSS series show it). */
const rssPeakTrend = peakTrend(rss, 60_000);
const elapsed = Date.now() - startedAt;
const reasons = failures(check, {
  chaosFailures: chaos.failures,
  publishUnexpected: publisher.counts.unexpected,
  caughtUp,
});
for (const line of renderReport({
  check,
  rss,
  rssPeakTrend,
  counters,
  chaos: chaos.actions,
  publisher: { ...publisher.counts, unexpectedSamples: publisher.unexpected },
  options,
  elapsed,
  perUser: options.perUser,
})) {
  log(line);
}
log(reasons.length === 0 ? 'soak: PASS' : `soak: FAIL: ${reasons.join('; ')}`);
const t = check.totals;
const nodeRss = rss.filter((p) => p.process.startsWith('node'));
log(
  JSON.stringify({
    soak: reasons.length === 0 ? 'pass' : 'fail',
    reasons,
    minutes: options.minutes,
    users: t.users,
    devices: t.devices,
    published: t.published,
    received: t.received,
    lost: t.lost,
    lostInExplainedGap: t.lostInExplainedGap,
    duplicated: t.duplicated,
    reordered: t.reordered,
    skips: t.skips,
    gapsExplained: t.gapsExplained,
    gapsUnexplained: t.gapsUnexplained,
    unconfirmed: t.unconfirmed,
    redelivered: t.redelivered,
    caughtUp,
    chaos: chaos.actions.reduce((a, x) => ({ ...a, [x.action]: (a[x.action] ?? 0) + 1 }), {}),
    nodePeakTrendMiBPer10Min: rssPeakTrend,
    nodePeakRssMiB: Math.max(0, ...nodeRss.map((p) => p.peakMiB)),
    nodeMaxDriftMiBPerMin: nodeRss.some((p) => p.driftMiBPerMin !== null)
      ? Math.max(...nodeRss.filter((p) => p.driftMiBPerMin !== null).map((p) => p.driftMiBPerMin))
      : null,
    errors: counters.errors,
    elapsedS: Math.round(elapsed / 1000),
  }),
);
process.exit(reasons.length === 0 ? 0 : 1);

/** Polls `condition` every 100 ms; resolves true when met, false (or throws with `what`) at the deadline. */
async function waitUntil(condition, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      if (what === null) return false;
      throw new Error(`soak: ${what} did not happen within ${timeoutMs} ms`);
    }
    await sleep(100);
  }
  return true;
}
