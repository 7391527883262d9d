#!/usr/bin/env node
// The whole check, as `npm test` runs it: lint, format, type-check (server and
// browser builds), build, then the vitest suite. It runs every step even when
// one fails, and ends with the plain line CI reads: `N passed, N failed`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';

const steps = [
  ['eslint', ['npx', 'eslint', '.']],
  ['prettier', ['npx', 'prettier', '--check', '.']],
  ['typecheck', ['npx', 'tsc', '-p', 'tsconfig.json', '--noEmit']],
  ['typecheck (browser)', ['npx', 'tsc', '-p', 'tsconfig.browser.json']],
  ['build', ['npm', 'run', 'build']],
];

let stepFailures = 0;
for (const [name, [cmd, ...args]] of steps) {
  console.log(`\n▶ ${name}`);
  const run = spawnSync(cmd, args, { stdio: 'inherit' });
  if (run.status !== 0) {
    console.log(`✖ ${name} failed`);
    stepFailures++;
  }
}

mkdirSync('test-results', { recursive: true });
const report = 'test-results/vitest.json';
console.log('\n▶ vitest');
const extra = process.argv.slice(2);
const vitest = spawnSync(
  'npx',
  [
    'vitest',
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${report}`,
    ...extra,
  ],
  { stdio: 'inherit', env: { ...process.env, AGENTSOCKET_SKIP_BUILD: '1' } },
);

let passed = 0;
let failed = 0;
let skipped = 0;
if (existsSync(report)) {
  const results = JSON.parse(readFileSync(report, 'utf8'));
  passed = results.numPassedTests ?? 0;
  failed = (results.numFailedTests ?? 0) + (results.numRuntimeErrorTestSuites ?? 0);
  skipped = (results.numPendingTests ?? 0) + (results.numTodoTests ?? 0);
  // A file that fails to load has no tests to count; count the file.
  for (const file of results.testResults ?? []) {
    if (file.status === 'failed' && (file.assertionResults ?? []).length === 0) failed++;
  }
}
if (vitest.status !== 0 && failed === 0) failed = 1;
// The Redis and cluster files skip without redis-server (test/helpers/redis-server.ts
// warns in each file); say it again at the end, where nobody can miss it.
const redis = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
if (redis.error !== undefined || redis.status !== 0) {
  console.warn(
    '\n!!! redis-server is missing: test/redis, test/cluster and test/e2e/http-redis were SKIPPED.' +
      '\n!!! Install it (apt-get install redis-server; .ci/run does) to run them.',
  );
}
const nginxFound = ['nginx', '/usr/sbin/nginx'].some((command) => {
  const probe = spawnSync(command, ['-v'], { stdio: 'ignore' });
  return probe.error === undefined && probe.status === 0;
});
if (!nginxFound) {
  console.warn(
    '\n!!! nginx is missing: test/deploy (the reverse-proxy tests) was SKIPPED.' +
      '\n!!! Install it (apt-get install nginx; .ci/run does) to run them.',
  );
}
failed += stepFailures;
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed === 0 ? 0 : 1);
