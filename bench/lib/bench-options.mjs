/**
 * The command line of `node bench/run.mjs`, checked up front.
 */
import os from 'node:os';
import { SYSTEMS } from './bench-config.mjs';

export const SCENARIO_IDS = [
  'connect',
  'memory',
  'targeted',
  'broadcast',
  'large',
  'resume',
  'slow-reader',
];

const HELP = `usage: node bench/run.mjs [options]   (npm run bench builds first)

  --quick              small counts, 1 repetition: a smoke run (writes bench/results/quick.json)
  --reps N             repetitions of every measurement (default 3, quick 1)
  --only LIST          systems, comma-separated: ${SYSTEMS.join(',')}
                       (agentsocket-redis* need redis-server on PATH; the harness starts its own)
  --scenarios LIST     scenarios, comma-separated: ${SCENARIO_IDS.join(',')}
  --loaders N          load-generator processes (default: CPUs − 1, between 1 and 4)
  --max-minutes N      budget of the whole run; past it everything is killed
  --profile            run the servers under --cpu-prof (profiles in bench/results/profiles/)
  --render FILE        only write docs/benchmarks.md again from a results file (e.g. bench/results/latest.json)
  --docs / --no-docs   write docs/benchmarks.md (default: yes for full runs, no for --quick)
  --help`;

function list(value, allowed, flag) {
  const items = value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  for (const item of items) {
    if (!allowed.includes(item)) throw new Error(`${flag}: unknown "${item}" (one of ${allowed})`);
  }
  return items;
}

function positive(value, flag) {
  const number = Number(value);
  if (!Number.isInteger(number) || number <= 0) throw new Error(`${flag} needs a positive integer`);
  return number;
}

export function parseBenchOptions(argv) {
  const options = {
    quick: false,
    reps: null,
    systems: SYSTEMS,
    scenarios: SCENARIO_IDS,
    // One core for the server, the rest for load; more than 4 only adds scheduling noise.
    loaders: Math.min(4, Math.max(1, os.cpus().length - 1)),
    maxMinutes: null,
    docs: null,
    profile: false,
    render: null,
    help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case '--quick':
        options.quick = true;
        break;
      case '--reps':
        options.reps = positive(value(), flag);
        break;
      case '--only':
        options.systems = list(value(), SYSTEMS, flag);
        break;
      case '--scenarios':
        options.scenarios = list(value(), SCENARIO_IDS, flag);
        break;
      case '--loaders':
        options.loaders = positive(value(), flag);
        break;
      case '--max-minutes':
        options.maxMinutes = positive(value(), flag);
        break;
      case '--render':
        options.render = value();
        break;
      case '--profile':
        options.profile = true;
        break;
      case '--docs':
        options.docs = true;
        break;
      case '--no-docs':
        options.docs = false;
        break;
      case '--help':
      case '-h':
        options.help = true;
        break;
      default:
        throw new Error(`unknown option ${flag}\n\n${HELP}`);
    }
  }
  return options;
}

export { HELP };
