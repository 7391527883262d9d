// @ts-check
/**
 * A Node backend that embeds the agentsocket gateway in its own HTTP server
 * and runs an agent with `agentRun`: the events reach the user's browsers and
 * apps over `ws://host/v1/ws`, in order, recoverable across reconnects.
 *
 *   JWT_SECRET=$(openssl rand -base64 32) PORT=3000 node server.mjs
 *
 * Routes of this app (the gateway adds `/v1/ws`):
 *   POST /api/agentsocket-token  {"user":"alice"}  -> a short-lived user token (text)
 *   POST /api/ask                {"user":"alice","question":"…"} -> 202 {"runId"}
 *
 * The `user` in the bodies stands in for your session: a real app takes the
 * user from its own login and never from the request body.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { agentRun, createGateway, createJwtAuthenticator, mintDevToken } from 'agentsocket';

const secret = process.env.JWT_SECRET;
if (secret === undefined || Buffer.byteLength(secret) < 32) {
  console.error('set JWT_SECRET to at least 32 bytes, e.g. JWT_SECRET=$(openssl rand -base64 32)');
  process.exit(2);
}
const port = Number(process.env.PORT ?? 3000);

const gateway = createGateway({ authenticator: createJwtAuthenticator({ secret }) });

/** A tool of the agent: a real app calls an API or a model here. */
async function lookUpWeather(city) {
  return { city, celsius: 21 };
}

/**
 * The agent: every step is an event of run `runId` for `userId`. The first
 * publish waits up to 5 s for the user's socket, so a run started just before
 * the page connects is not missed.
 */
async function weatherAgent(userId, runId, question) {
  const run = agentRun(gateway, userId, runId);
  await run.started({ agent: 'weather', input: question }, { waitMs: 5000 });
  try {
    await run.thinking('Looking up the weather in Paris');
    const started = performance.now();
    await run.toolExecuting({ toolCallId: 't1', tool: 'weather', args: { city: 'Paris' } });
    const weather = await lookUpWeather('Paris');
    await run.toolCompleted({
      toolCallId: 't1',
      tool: 'weather',
      result: weather,
      durationMs: Math.round(performance.now() - started),
    });
    const answer = ['It is ', `${weather.celsius} °C `, 'in Paris.'];
    for (const t of answer) await run.emit('token', { t });
    await run.completed({ status: 'succeeded', result: answer.join('') });
  } catch (error) {
    await run.completed({ status: 'failed', error: String(error) });
  }
}

/** The JSON body of a request, at most 64 KiB. */
async function readJson(req) {
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > 64 * 1024) throw new Error('body too large');
  }
  return JSON.parse(text || '{}');
}

function send(res, status, body, type = 'application/json') {
  res.writeHead(status, { 'Content-Type': type });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

const server = createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/api/agentsocket-token') {
      const { user } = await readJson(req);
      const token = await mintDevToken({ secret, userId: String(user), ttlSeconds: 600 });
      return send(res, 200, token, 'text/plain');
    }
    if (req.method === 'POST' && req.url === '/api/ask') {
      const { user, question } = await readJson(req);
      const runId = `run-${randomUUID()}`;
      weatherAgent(String(user), runId, String(question)).catch((error) =>
        console.error('agent run failed', runId, error),
      );
      return send(res, 202, { runId });
    }
    send(res, 404, { error: 'not found' });
  } catch (error) {
    send(res, 400, { error: String(error instanceof Error ? error.message : error) });
  }
});
gateway.attach(server); // serves ws://host/v1/ws

server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  console.log(`listening on http://127.0.0.1:${bound}`);
});

// Drain on SIGTERM: open sockets close with 1001 (the SDK reconnects elsewhere).
process.once('SIGTERM', () => {
  gateway
    .close()
    .then(() => new Promise((resolve) => server.close(resolve)))
    .then(() => process.exit(0));
});
