#!/usr/bin/env node
/**
 * `npm run bench`: agentsocket (memory engine, and Redis engine when
 * `redis-server` is on PATH), a bare ws server (the floor) and Socket.IO 4
 * (the popular peer) under the same load, on 127.0.0.1, in one run. Bounded in
 * count (bench-config.mjs) and in time (--max-minutes); every child process
 * (and the harness's own redis-server) is killed by pid at the end, on error
 * and on SIGINT. See --help.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  SYSTEMS,
  SYSTEM_LABELS,
  benchConfig,
  CLUSTER_SHARDS,
  isAgentsocket,
  onRedis,
  maxSocketsPerProcess,
} from './lib/bench-config.mjs';
import { HELP, parseBenchOptions } from './lib/bench-options.mjs';
import { evaluateAims, formatNumber, renderMarkdown } from './lib/bench-report.mjs';
import { BenchRedis, redisServerAvailable } from './lib/bench-redis.mjs';
import { BenchRedisCluster } from './lib/bench-redis-cluster.mjs';
import { BenchResults } from './lib/bench-results.mjs';
import { checkFdLimit } from './lib/fd-limit.mjs';
import { describeMachine } from './lib/machine.mjs';
import { ProcessSet } from './lib/process-set.mjs';
import { broadcastScenario } from './scenarios/broadcast-scenario.mjs';
import { connectScenario } from './scenarios/connect-scenario.mjs';
import { largeScenario } from './scenarios/large-scenario.mjs';
import { memoryScenario } from './scenarios/memory-scenario.mjs';
import { resumeScenario } from './scenarios/resume-scenario.mjs';
import { slowReaderScenario } from './scenarios/slow-reader-scenario.mjs';
import { targetedScenario } from './scenarios/targeted-scenario.mjs';

const ALL_SCENARIOS = [
  connectScenario,
  memoryScenario,
  targetedScenario,
  broadcastScenario,
  largeScenario,
  resumeScenario,
  slowReaderScenario,
];
const root = new URL('../', import.meta.url);

function fail(message, code = 2) {
  console.error(`bench: ${message}`);
  process.exit(code);
}

/** Writes docs/benchmarks.md from a results file, without measuring anything. */
function renderAgain(file) {
  const json = JSON.parse(readFileSync(file, 'utf8'));
  const markdown = renderMarkdown({
    results: BenchResults.fromJSON(json.scenarios),
    scenarios: ALL_SCENARIOS.filter((scenario) => json.run.scenarios.includes(scenario.id)),
    systems: json.run.systems,
    config: json.config,
    machine: json.machine,
    date: json.generatedAt,
    run: json.run,
  });
  const docsFile = new URL('docs/benchmarks.md', root);
  writeFileSync(docsFile, markdown);
  console.log(`report: ${fileURLToPath(docsFile)} (from ${file})`);
}

/** The commit measured (with `+dirty` when the tree has changes), or 'unknown'. */
function gitCommit() {
  try {
    const git = (...args) => execFileSync('git', args, { encoding: 'utf8' }).trim();
    return git('rev-parse', '--short', 'HEAD') + (git('status', '--porcelain') ? '+dirty' : '');
  } catch {
    return 'unknown';
  }
}

let options;
try {
  options = parseBenchOptions(process.argv.slice(2));
} catch (error) {
  fail(error.message);
}
if (options.help) {
  console.log(HELP);
  process.exit(0);
}
if (options.render) {
  renderAgain(options.render);
  process.exit(0);
}

const config = benchConfig(options.quick);
const reps = options.reps ?? config.reps;
const maxMinutes = options.maxMinutes ?? config.maxMinutes;
let systems = SYSTEMS.filter((system) => options.systems.includes(system));
const scenarios = ALL_SCENARIOS.filter((scenario) => options.scenarios.includes(scenario.id));
const writeDocs = options.docs ?? !options.quick;

try {
  checkFdLimit(maxSocketsPerProcess(config));
} catch (error) {
  fail(error.message);
}
if (systems.some(isAgentsocket) && !existsSync(new URL('dist/index.js', root))) {
  fail('dist/index.js is missing: run `npm run build` first, or use --only ws,socketio');
}
if (systems.some(onRedis) && !redisServerAvailable()) {
  console.warn(`bench: redis-server not found: ${systems.filter(onRedis).join(', ')} skipped`);
  systems = systems.filter((system) => !onRedis(system));
}
if (systems.length === 0) fail('no system left to measure');

const processes = new ProcessSet();
process.on('exit', () => processes.killAll());
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    const count = processes.children.size + processes.services.size;
    console.error(`\nbench: ${signal}, killing ${count} child process(es)`);
    processes.killAll();
    process.exit(130);
  });
}
const budget = setTimeout(() => {
  console.error(`bench: the run exceeded --max-minutes ${maxMinutes}; killing everything`);
  processes.killAll();
  process.exit(3);
}, maxMinutes * 60_000);
budget.unref();

const profileDir = options.profile
  ? fileURLToPath(new URL('results/profiles/', import.meta.url))
  : undefined;
if (profileDir) mkdirSync(profileDir, { recursive: true });
let redis;
if (systems.includes('agentsocket-redis')) {
  try {
    redis = await BenchRedis.start(processes);
  } catch (error) {
    processes.killAll();
    fail(`could not start redis-server: ${error.message}`);
  }
  console.log(`bench: redis-server (pid ${redis.pid}) on ${redis.url} for agentsocket-redis`);
}
const redisClusters = {};
for (const system of systems.filter((s) => CLUSTER_SHARDS[s] !== undefined)) {
  const shards = CLUSTER_SHARDS[system];
  try {
    redisClusters[shards] = await BenchRedisCluster.start(processes, shards);
  } catch (error) {
    processes.killAll();
    fail(`could not start a Redis Cluster of ${shards}: ${error.message}`);
  }
  console.log(`bench: Redis Cluster of ${shards} master(s) on ${redisClusters[shards].urls}`);
}
const ctx = {
  processes,
  redis,
  redisClusters,
  config,
  loaderCount: options.loaders,
  secret: randomBytes(32).toString('hex'),
  profileDir,
};
const results = new BenchResults();
const startedAt = Date.now();
const loadAtStart = describeMachine().loadAverage;

function shortValues(values) {
  return Object.entries(values)
    .map(([key, value]) => `${key}=${formatNumber(value)}`)
    .join(' ');
}

for (let rep = 0; rep < reps; rep++) {
  for (const scenario of scenarios) {
    const eligible = systems.filter(
      (system) => !scenario.systems || scenario.systems.includes(system),
    );
    // Rotate the order per repetition so that drift (heat, caches) does not favour one system.
    const order = eligible.map((_, i) => eligible[(i + rep) % eligible.length]);
    for (const system of order) {
      const label = `[rep ${rep + 1}/${reps}] ${scenario.id} ${SYSTEM_LABELS[system]}`;
      const began = Date.now();
      try {
        const { values, diagnostics } = await scenario.run(ctx, system);
        results.add(scenario.id, system, values, diagnostics);
        console.log(
          `${label} (${((Date.now() - began) / 1000).toFixed(1)} s): ${shortValues(values)}`,
        );
      } catch (error) {
        results.fail(scenario.id, system, error);
        console.error(`${label} FAILED: ${error?.stack ?? error}`);
      }
      if (processes.children.size > 0) {
        throw new Error(`${processes.children.size} child process(es) left after ${label}`);
      }
    }
  }
}

await redis?.stop();
for (const cluster of Object.values(redisClusters)) await cluster.stop();
const machine = { ...describeMachine(), loadAverageAtStart: loadAtStart };
if (redis) machine.versions['redis-server'] = redis.version;
const date = new Date().toISOString();
const run = {
  quick: options.quick,
  reps,
  loaders: options.loaders,
  args: process.argv.slice(2),
  commit: gitCommit(),
};
const aims = evaluateAims(results);
const json = {
  generatedAt: date,
  durationSeconds: Math.round((Date.now() - startedAt) / 1000),
  machine,
  run: { ...run, systems, scenarios: scenarios.map((scenario) => scenario.id) },
  config,
  aims: aims.map(({ key, text, ratio, status }) => ({ key, text, ratio, status })),
  scenarios: results.toJSON(scenarios, systems),
};
const markdown = renderMarkdown({ results, scenarios, systems, config, machine, date, run });

const resultsDir = new URL('results/', import.meta.url);
mkdirSync(resultsDir, { recursive: true });
const jsonFile = new URL(options.quick ? 'quick.json' : 'latest.json', resultsDir);
writeFileSync(jsonFile, `${JSON.stringify(json, null, 2)}\n`);
console.log(`\n${markdown}`);
console.log(`results: ${fileURLToPath(jsonFile)}`);
if (writeDocs) {
  const docsFile = new URL('docs/benchmarks.md', root);
  writeFileSync(docsFile, markdown);
  console.log(`report: ${fileURLToPath(docsFile)}`);
}
const failures = Object.values(results.failures).reduce(
  (sum, bySystem) => sum + Object.values(bySystem).reduce((n, list) => n + list.length, 0),
  0,
);
clearTimeout(budget);
process.exit(failures === 0 ? 0 : 1);
