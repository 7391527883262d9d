/** Starts a fresh session for one measurement and always kills it afterwards. */
import { BenchSession } from '../lib/bench-session.mjs';

export async function withSession(ctx, system, auth, fn) {
  const session = await BenchSession.start({
    processes: ctx.processes,
    system,
    auth,
    loaderCount: ctx.loaderCount,
    config: ctx.config,
    secret: ctx.secret,
    profileDir: ctx.profileDir,
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
