// A gateway from dist/ in a process of its own, run with --expose-gc, so that
// the heap measured is the gateway's alone (scenario S33). Driven over IPC:
// `stats` answers the counts, `measure` collects garbage and answers the heap,
// `stop` drains and exits. The HS256 secret comes in the environment.
import { createServer } from 'node:http';
import { createGateway, createJwtAuthenticator, MemoryBroker } from '../../dist/index.js';

const broker = new MemoryBroker({ historySize: 10 });
const gateway = createGateway({
  authenticator: createJwtAuthenticator({ secret: process.env.SCENARIO_JWT_SECRET ?? '' }),
  broker,
  limits: { handshakesPerIpPerSecond: 100_000 },
});
const server = createServer((_req, res) => {
  res.statusCode = 404;
  res.end();
});
gateway.attach(server);

function counts() {
  return { gateway: gateway.stats(), broker: broker.stats() };
}

async function collect() {
  for (let i = 0; i < 6; i++) {
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return process.memoryUsage().heapUsed;
}

process.on('message', async (message) => {
  if (message.type === 'stats') process.send({ type: 'stats', ...counts() });
  if (message.type === 'publish') {
    await gateway.publish(message.userId, { event: 'token', data: { n: message.n } });
    process.send({ type: 'published' });
  }
  if (message.type === 'measure') {
    const heapUsed = await collect();
    process.send({ type: 'heap', heapUsed, ...counts() });
  }
  if (message.type === 'stop') {
    await gateway.close();
    await broker.close();
    server.close(() => process.exit(0));
  }
});

server.listen(0, '127.0.0.1', async () => {
  await gateway.ready;
  process.send({ type: 'ready', port: server.address().port });
});
