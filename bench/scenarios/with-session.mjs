/**
 * Starts a fresh session for one measurement and always kills it afterwards.
 * A system on the harness's Redis gets it empty (FLUSHALL before and after),
 * so that no measurement sees another's streams.
 */
import { AGENTSOCKET_ENGINES, CLUSTER_SHARDS } from '../lib/bench-config.mjs';
import { BenchSession } from '../lib/bench-session.mjs';

/** `serverEnv`: environment variables for the server process alone (a deployment setting). */
export async function withSession(ctx, system, auth, fn, { serverEnv } = {}) {
  const engine = AGENTSOCKET_ENGINES[system];
  const redis =
    engine === 'redis'
      ? ctx.redis
      : engine === 'redis-cluster'
        ? ctx.redisClusters[CLUSTER_SHARDS[system]]
        : undefined;
  if (redis) await redis.flush();
  try {
    return await withFreshSession(ctx, system, auth, redis, serverEnv, fn);
  } finally {
    if (redis) await redis.flush();
  }
}

async function withFreshSession(ctx, system, auth, redis, serverEnv, fn) {
  const session = await BenchSession.start({
    processes: ctx.processes,
    system,
    auth,
    loaderCount: ctx.loaderCount,
    config: ctx.config,
    secret: ctx.secret,
    profileDir: ctx.profileDir,
    redis,
    serverEnv,
  });
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

/** What a delivery measurement adds to a run's diagnostics (bottlenecks, losses). */
export function deliveryDiagnostics(name, measured) {
  return {
    [`${name}.delivered`]: `${measured.delivered}/${measured.expected}`,
    [`${name}.serverUtilization`]: round(measured.serverUtilization),
    [`${name}.loaderUtilization`]: round(measured.loaderUtilization),
    [`${name}.loaderCpuUsPerMsg`]: round(measured.loaderCpuUsPerMsg),
    ...(measured.redisCpuUsPerMsg !== null
      ? { [`${name}.redisCpuUsPerMsg`]: round(measured.redisCpuUsPerMsg) }
      : {}),
    ...(measured.shardCpuUsPerMsg
      ? { [`${name}.shardCpuUsPerMsg`]: measured.shardCpuUsPerMsg.map(round).join(' / ') }
      : {}),
    ...(Object.keys(measured.unexpectedCloses).length > 0
      ? { [`${name}.unexpectedCloses`]: measured.unexpectedCloses }
      : {}),
    ...(measured.negativeLatencies > 0
      ? { [`${name}.negativeLatencies`]: measured.negativeLatencies }
      : {}),
  };
}

function round(value) {
  return Math.round(value * 100) / 100;
}
