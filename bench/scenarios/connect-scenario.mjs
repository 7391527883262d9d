/**
 * (a) Connection rate: N clients connect with at most C handshakes in flight;
 * rate = N / (first dial → last client ready). Ready = agentsocket's
 * `welcome`, ws `open`, Socket.IO `connect`. Twice: with the HS256 JWT
 * verified by every server (jose for the peers), and without (the token is
 * the user id).
 */
import { userIds } from '../lib/bench-session.mjs';
import { withSession } from './with-session.mjs';

async function measure(ctx, system, auth) {
  const { count, concurrency } = ctx.config.connect;
  return withSession(ctx, system, auth, async (session) => {
    const ids = userIds(count);
    await session.prepare(ids);
    const before = await session.serverUsage();
    const result = await session.connect(ids, { concurrency });
    const after = await session.serverUsage();
    if (result.failed > 0) {
      throw new Error(
        `${system}/${auth}: ${result.failed} failed: ${JSON.stringify(result.errors)}`,
      );
    }
    const cpu = after.cpu.user + after.cpu.system - (before.cpu.user + before.cpu.system);
    return {
      rate: result.opened / (result.elapsedMs / 1000),
      cpuUsPerConn: cpu / result.opened,
      info: session.info,
    };
  });
}

export const connectScenario = {
  id: 'connect',
  title: '(a) Connection rate',
  describe: (config) =>
    `${config.connect.count} connections, ${config.connect.concurrency} handshakes in flight; ` +
    'ready = agentsocket `welcome`, ws `open`, Socket.IO `connect`.',
  metrics: [
    {
      key: 'ratePerSecJwt',
      label: 'connections/s, JWT verified',
      unit: 'conn/s',
      better: 'higher',
    },
    {
      key: 'cpuUsPerConnJwt',
      label: 'server CPU per connection, JWT',
      unit: 'µs',
      better: 'lower',
    },
    { key: 'ratePerSecNone', label: 'connections/s, no JWT', unit: 'conn/s', better: 'higher' },
    {
      key: 'cpuUsPerConnNone',
      label: 'server CPU per connection, no JWT',
      unit: 'µs',
      better: 'lower',
    },
  ],
  async run(ctx, system) {
    const jwt = await measure(ctx, system, 'jwt');
    const none = await measure(ctx, system, 'none');
    return {
      values: {
        ratePerSecJwt: jwt.rate,
        cpuUsPerConnJwt: jwt.cpuUsPerConn,
        ratePerSecNone: none.rate,
        cpuUsPerConnNone: none.cpuUsPerConn,
      },
      diagnostics: jwt.info?.authenticator ? { authenticator: jwt.info.authenticator } : {},
    };
  },
};
