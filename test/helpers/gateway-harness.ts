/**
 * A gateway on a real HTTP server on 127.0.0.1, port 0, with an HS256
 * authenticator, for end-to-end tests of the in-process API.
 */
import { randomBytes } from 'node:crypto';
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerOptions,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import { createJwtAuthenticator } from '../../src/auth/jwt-authenticator.js';
import {
  createGateway,
  type CreateGatewayOptions,
  type GatewayNode,
} from '../../src/gateway/gateway.js';
import { TestClient, type ConnectOptions } from './test-client.js';

export interface TokenOptions {
  /** Seconds from now. Default 3600. */
  expiresIn?: number;
  /** Override the claims entirely (sub included). */
  claims?: Record<string, unknown>;
}

export interface HarnessOptions {
  /** Leeway of the harness's JWT authenticator on `exp`/`nbf`, in seconds. Default 5. */
  leewaySeconds?: number;
  /**
   * Answers plain HTTP requests on the gateway's server (the demo page, say).
   * Returns true when it handled the request; anything else answers 404.
   */
  onRequest?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /**
   * Options of `http.createServer`, e.g. `handshakeServerOptions(ms)` to cut
   * off slow senders (`src/gateway/harden-server.ts`). Default: Node's.
   */
  server?: ServerOptions;
}

export interface Harness {
  gateway: GatewayNode;
  server: Server;
  /** ws://127.0.0.1:PORT/v1/ws */
  wsUrl: string;
  httpUrl: string;
  secret: Uint8Array;
  token(userId: string, options?: TokenOptions): Promise<string>;
  connect(userId: string, options?: ConnectOptions): Promise<TestClient>;
  close(): Promise<void>;
}

/**
 * Gateway options, plus the harness's own (`leewaySeconds`, `onRequest`,
 * `server`), which may also come as a second argument.
 */
export async function startGateway(
  options: Partial<CreateGatewayOptions> & HarnessOptions = {},
  harnessOptions: HarnessOptions = {},
): Promise<Harness> {
  const secretText = randomBytes(32).toString('base64url');
  const secret = new TextEncoder().encode(secretText);
  const {
    leewaySeconds: leeway,
    onRequest: handler,
    server: serverOptions,
    ...gatewayOptions
  } = options;
  const leewaySeconds = harnessOptions.leewaySeconds ?? leeway;
  const onRequest = harnessOptions.onRequest ?? handler;
  const gateway = createGateway({
    authenticator: createJwtAuthenticator({
      secret: secretText,
      ...(leewaySeconds !== undefined ? { leewaySeconds } : {}),
    }),
    ...gatewayOptions,
  });
  const server = createServer(harnessOptions.server ?? serverOptions ?? {}, (req, res) => {
    if (onRequest?.(req, res)) return;
    res.statusCode = 404;
    res.end();
  });
  gateway.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await gateway.ready;
  const { port } = server.address() as AddressInfo;
  const clients: TestClient[] = [];
  const token = async (userId: string, tokenOptions: TokenOptions = {}): Promise<string> => {
    const now = Math.floor(Date.now() / 1000);
    const claims = tokenOptions.claims ?? { sub: userId };
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt(now)
      .setExpirationTime(now + (tokenOptions.expiresIn ?? 3600))
      .sign(secret);
  };
  const wsUrl = `ws://127.0.0.1:${port}/v1/ws`;
  return {
    gateway,
    server,
    wsUrl,
    httpUrl: `http://127.0.0.1:${port}`,
    secret,
    token,
    async connect(userId, connectOptions = {}) {
      const client = await TestClient.connect(wsUrl, {
        token: await token(userId),
        ...connectOptions,
      });
      clients.push(client);
      return client;
    },
    async close() {
      for (const client of clients) client.terminate();
      await gateway.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
