/**
 * Renders a run as markdown: one table per scenario (median and range per
 * system, ratios against bare ws and Socket.IO, and of the Redis engine
 * against bare ws and the memory engine), where agentsocket stands against
 * its aims and the reference figures, the machine and the date.
 */
import { AIMS, REFERENCE, SYSTEM_LABELS } from './bench-config.mjs';

const NO_RESUME = 'no resume';

/** The ratio columns of a scenario table, `[system, reference, heading]`; shown when both ran. */
const RATIOS = [
  ['agentsocket', 'ws', 'agentsocket ÷ ws'],
  ['agentsocket', 'socketio', 'agentsocket ÷ Socket.IO'],
  ['socketio', 'ws', 'Socket.IO ÷ ws'],
  ['agentsocket-redis', 'ws', 'agentsocket (Redis) ÷ ws'],
  ['agentsocket-redis', 'agentsocket', 'agentsocket (Redis) ÷ agentsocket'],
];

export function formatNumber(value) {
  if (value === null || value === undefined) return '—';
  const abs = Math.abs(value);
  if (abs >= 100) return Math.round(value).toLocaleString('en-US');
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function cell(summary) {
  if (!summary) return '—';
  const mid = formatNumber(summary.median);
  if (summary.n < 2) return mid;
  return `${mid} (${formatNumber(summary.min)}–${formatNumber(summary.max)})`;
}

function ratioCell(ratio) {
  return ratio === null ? '—' : `${ratio.toFixed(2)}×`;
}

function metricLabel(metric, config) {
  const [small, large] = config.memory.counts;
  return metric.label
    .replace('{small}', small.toLocaleString('en-US'))
    .replace('{large}', large.toLocaleString('en-US'));
}

function scenarioTable(results, scenario, systems, config) {
  const ratioColumns = RATIOS.filter(
    ([system, reference]) => systems.includes(system) && systems.includes(reference),
  );
  const headings = [
    ...systems.map((system) => SYSTEM_LABELS[system]),
    ...ratioColumns.map(([, , heading]) => heading),
  ];
  const lines = [
    `| metric | ${headings.join(' | ')} |`,
    `|---|${headings.map(() => '---:').join('|')}|`,
  ];
  for (const metric of scenario.metrics) {
    const cells = systems.map((system) => {
      if (scenario.systems && !scenario.systems.includes(system)) return NO_RESUME;
      return cell(results.summary(scenario.id, metric.key, system));
    });
    const ratios = ratioColumns.map(([system, reference]) =>
      ratioCell(results.ratio(scenario.id, metric.key, system, reference)),
    );
    const label = `${metricLabel(metric, config)} (${metric.unit}, ${metric.better} is better)`;
    lines.push(`| ${label} | ${[...cells, ...ratios].join(' | ')} |`);
  }
  return lines.join('\n');
}

/**
 * Where agentsocket stands against each aim (see AIMS):
 * `{aim, measured, compared, ratio, status}`.
 */
export function evaluateAims(results) {
  return AIMS.map((aim) => {
    const system = aim.system ?? 'agentsocket';
    const reference = aim.reference === undefined ? 'ws' : aim.reference;
    const measured = results.summary(aim.scenario, aim.metric, system);
    const compared =
      reference === null
        ? null
        : results.summary(aim.scenario, aim.referenceMetric ?? aim.metric, reference);
    const ratio =
      measured && compared && compared.median !== 0 ? measured.median / compared.median : null;
    let status = 'not measured';
    if (aim.maxValue !== undefined && measured) {
      status = measured.median <= aim.maxValue ? 'meets' : 'misses';
    } else if (ratio !== null) {
      const ok = aim.maxRatio !== undefined ? ratio <= aim.maxRatio : ratio >= aim.minRatio;
      status = ok ? 'meets' : 'misses';
    }
    return { ...aim, system, reference, measured, compared, ratio, status };
  });
}

function aimsTable(results) {
  const lines = ['| aim | measured | compared with | ratio | status |', '|---|---:|---:|---:|---|'];
  for (const aim of evaluateAims(results)) {
    const measured = `${SYSTEM_LABELS[aim.system]}: ${cell(aim.measured)}`;
    const compared =
      aim.reference === null
        ? `the aim: ${formatNumber(aim.maxValue)}`
        : `${SYSTEM_LABELS[aim.reference]}: ${cell(aim.compared)}`;
    lines.push(
      `| ${aim.text} | ${measured} | ${compared} | ${ratioCell(aim.ratio)} | ${aim.status} |`,
    );
  }
  return lines.join('\n');
}

function referenceTable(results) {
  const rows = [
    ['CPU µs per small message, saturation', 'cpuUsPerMsg', 'targeted', 'satCpuUsPerMsg'],
    ['RSS per idle connection (KiB)', 'kbPerConn', 'memory', 'rssPerConnLarge'],
    ['connections/s, JWT', 'connPerSec', 'connect', 'ratePerSecJwt'],
    ['connections/s, no JWT', 'connPerSec', 'connect', 'ratePerSecNone'],
  ];
  const lines = [
    '| figure | ws reference | ws here | Socket.IO reference | Socket.IO here | agentsocket here | ' +
      'agentsocket (Redis) here |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const [label, refKey, scenario, metric] of rows) {
    const here = (system) => cell(results.summary(scenario, metric, system));
    lines.push(
      `| ${label} | ${formatNumber(REFERENCE.ws[refKey])} | ${here('ws')} | ` +
        `${formatNumber(REFERENCE.socketio[refKey])} | ${here('socketio')} | ${here('agentsocket')} | ` +
        `${here('agentsocket-redis')} |`,
    );
  }
  return lines.join('\n');
}

function diagnosticsList(results, scenarios, systems) {
  const lines = [];
  for (const scenario of scenarios) {
    for (const system of systems) {
      const reps = results.diagnostics[scenario.id]?.[system] ?? [];
      const failures = results.failures[scenario.id]?.[system] ?? [];
      const keys = [...new Set(reps.flatMap((rep) => Object.keys(rep)))];
      const parts = keys.map((key) => {
        const values = reps.map((rep) => JSON.stringify(rep[key] ?? null).replaceAll('"', ''));
        return `${key} ${values.join(' / ')}`;
      });
      if (failures.length > 0) parts.push(`**failed**: ${failures.join('; ')}`);
      if (parts.length > 0)
        lines.push(`- ${scenario.id}, ${SYSTEM_LABELS[system]}: ${parts.join('; ')}`);
    }
  }
  return lines.join('\n');
}

export function renderMarkdown({ results, scenarios, systems, config, machine, date, run }) {
  const sections = [
    '# Benchmarks',
    '',
    `Generated by \`npm run bench\` (\`node bench/run.mjs${run.args.length ? ' ' + run.args.join(' ') : ''}\`) ` +
      `on ${date}, commit ${run.commit ?? 'unknown'}. Do not edit by hand: run it again.` +
      (run.quick ? ' **This is a `--quick` smoke run: small counts, one repetition.**' : ''),
    '',
    `Machine: ${machine.cpuCount} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.os}, ` +
      `Node ${machine.node}; ws ${machine.versions.ws}, socket.io ${machine.versions['socket.io']}, ` +
      `socket.io-client ${machine.versions['socket.io-client']}, jose ${machine.versions.jose}` +
      (machine.versions['redis-server']
        ? `, ioredis ${machine.versions.ioredis}, redis-server ${machine.versions['redis-server']}. `
        : '. ') +
      `Load average (1/5/15 min) ${machine.loadAverageAtStart.join(' / ')} at the start, ` +
      `${machine.loadAverage.join(' / ')} at the end: a load above the core count means other ` +
      'work shared the CPU, which skews throughput and latency far more than CPU per message.',
    '',
    `Each figure is the median of ${run.reps} repetition(s), with the range in parentheses. ` +
      `Ratios compare medians. ${run.loaders} load-generator process(es).`,
    '',
    '## How it is measured',
    '',
    '- Every server is its own process (`node --expose-gc`), started fresh for each measurement and ' +
      'killed by pid after it, listening on 127.0.0.1 only. The load generators are separate processes ' +
      '(`node --max-semi-space-size=32`, so that their own young-generation collections do not read ' +
      'as server latency; servers keep V8 defaults) with raw `ws` sockets (agentsocket, bare ws) that find `"bt":` and `"seq":` by `indexOf` in the ' +
      'received Buffer instead of parsing JSON, or `socket.io-client` (websocket transport only).',
    '- Publishing happens inside each server process, driven over IPC: the same loop for every system ' +
      "(one round = one event per user, then `setImmediate`; agentsocket's publish promises are awaited " +
      'per round). Each message carries its send time (`bt`, ms on the system clock with sub-ms ' +
      'resolution); latency is receipt time minus `bt`, across processes of one machine.',
    '- **bare ws (floor)**: a `ws` server doing the minimum: a map user → sockets, ' +
      '`JSON.stringify({event, data})` once per publish, `send` to each socket. No seq, no history, no ' +
      'acks, no limits. **Socket.IO 4**: websocket transport only, a room per user, ' +
      '`io.to(user).emit`. Both verify the same HS256 JWT with jose (Authorization header for ws, ' +
      '`auth.token` for Socket.IO) unless the scenario says "no JWT".',
    '- **agentsocket**: `createGateway` from `dist/` with its defaults (history 1000 per user, 4 MiB ' +
      'send buffer, heartbeats), except the per-IP connection and handshake limits, lifted because ' +
      `every client comes from 127.0.0.1. Clients ack cumulatively every ${config.ackEvery} events ` +
      '(events are `critical: false`), each at its own phase (client i counts i mod ' +
      `${config.ackEvery} events as unacked when it connects), as clients that connected at ` +
      'different times do: counted from zero together, every client of a round-robin would ' +
      'reach its hundredth event in the same round. The targeted fixed-rate phase is then run ' +
      'again with every client acking in the same round ("clients acking in step": 2,000 ack ' +
      "frames within about 100 ms), the worst case of inbound frames. The peers' clients never ack.",
    '- **agentsocket (Redis)**: the same gateway on the Redis engine, `new RedisBroker({ url })` ' +
      'with its defaults (history 1000 per user), against a redis-server the harness starts on a ' +
      'free port of 127.0.0.1 (no persistence: `--save "" --appendonly no`) and empties with ' +
      '`FLUSHALL` before and after every measurement. What it adds per event: its step of a Lua script ' +
      "in Redis (seq, stream append, trim, TTLs, `PUBLISH` on the user's channel; the publishes of " +
      'one event-loop turn share one script call), and the event ' +
      'comes back to the node through pub/sub (one subscription per connected user) before it is ' +
      'written to the socket; resume reads history from the Redis stream. Server CPU counts the ' +
      "node process only; the redis-server's own CPU per message is under Diagnostics " +
      '(`redisCpuUsPerMsg`), and it shares the same 2 cores.',
    '- agentsocket frames each event once and writes the same bytes to every socket of its ' +
      "fan-out. A socket's first frame of an event-loop turn is written at once, as the bare ws " +
      'server writes; further frames under 16 KiB in the same turn are coalesced until the end of ' +
      'the turn (one `writev` for many frames), larger ones are written at once.',
    '- agentsocket keeps every event in its per-user history (the recovery queue), as frame bytes ' +
      'in chunks outside the V8 heap (memory engine; docs/performance.md), and Redis keeps it on the ' +
      'Redis engine. The peers keep nothing.',
    "- Server CPU per message = the server process's `process.cpuUsage()` (user + system) over the " +
      'measurement window ÷ messages delivered to clients.',
    '- On a 2-core machine the server and the load generator share the CPU: throughput figures are ' +
      'bounded by whichever is slower (see the utilizations under Diagnostics); CPU per message is the ' +
      'figure to compare.',
    '',
    '## Where agentsocket stands',
    '',
    'Aims (targets to report against, not tests). Medians, with the range over the repetitions:',
    '',
    aimsTable(results),
    '',
    'Reference figures (measured elsewhere) next to the same figures on this machine:',
    '',
    referenceTable(results),
    '',
  ];
  for (const scenario of scenarios) {
    sections.push(`## ${scenario.title}`, '', scenario.describe(config), '');
    sections.push(scenarioTable(results, scenario, systems, config), '');
  }
  const diagnostics = diagnosticsList(results, scenarios, systems);
  if (diagnostics) {
    sections.push(
      '## Diagnostics',
      '',
      'Per repetition (separated by /): messages delivered of expected, server and load-generator ' +
        'CPU utilization (1 = one core busy) over the window, load-generator CPU µs per message, ' +
        'closes nobody asked for, failures.',
      '',
      diagnostics,
      '',
    );
  }
  return sections.join('\n');
}
