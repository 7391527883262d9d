/**
 * A cluster of real gateway processes for one test: a private `redis-server`
 * (never the one on 6379) and `agentsocket serve --redis` nodes on it, each
 * found by its `listening` log line and waited ready (`/readyz` 200). Every
 * process is stopped by its pid in `stop()`.
 */
import { randomBytes } from 'node:crypto';
import { ApiKeys } from '../../src/auth/api-keys.js';
import { mintDevToken } from '../../src/auth/dev-token.js';
import { startCliServer, type CliServer } from './cli-process.js';
import { nodeApi, waitReadyz, type NodeApi } from './node-api.js';
import { RedisServer, type RedisServerOptions } from './redis-server.js';

export interface ClusterOptions {
  /** Gateway nodes. Default 2. */
  nodes?: number;
  redis?: RedisServerOptions;
  /** Extra environment of every node. */
  env?: Record<string, string>;
}

export interface Cluster {
  redis: RedisServer;
  nodes: CliServer[];
  secret: string;
  apiKey: string;
  /** A user token (HS256, 10 min). */
  token(userId: string): Promise<string>;
  /** An API request to `node` with the API key; the body, when given, is JSON. */
  api: NodeApi;
  /** Resolves when `node` answers `/readyz` with `status` (default 200). */
  waitReady(node: CliServer, status?: number, timeoutMs?: number): Promise<void>;
  /** SIGKILL every node by pid and dispose of Redis. */
  stop(): Promise<void>;
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const secret = randomBytes(32).toString('base64url');
  const apiKey = ApiKeys.generate();
  const redis = await RedisServer.start(options.redis);
  const nodes: CliServer[] = [];
  const cluster: Cluster = {
    redis,
    nodes,
    secret,
    apiKey,
    token: (userId) => mintDevToken({ secret, userId, ttlSeconds: 600 }),
    api: nodeApi(apiKey),
    waitReady: waitReadyz,
    stop: async () => {
      await Promise.all(nodes.map((node) => node.stop('SIGKILL')));
      await redis.dispose();
    },
  };
  try {
    const env = {
      AGENTSOCKET_JWT_SECRET: secret,
      AGENTSOCKET_API_KEYS: apiKey,
      AGENTSOCKET_REDIS_URL: redis.url,
      ...options.env,
    };
    const started = await Promise.all(
      Array.from({ length: options.nodes ?? 2 }, () => startCliServer([], env)),
    );
    nodes.push(...started);
    for (const node of nodes) await cluster.waitReady(node);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

/**
 * A backend publishing numbered events (`{event: 'tick', id: '<prefix>-<n>', data: n}`)
 * through the HTTP API, as a real one would: a 503 is counted and the event
 * kept to retry later with the same id (so a publish whose answer was lost
 * cannot be applied twice).
 */
export class TickPublisher {
  /** Ids that got a seq, with it, in the order the answers came. */
  readonly accepted = new Map<string, number>();
  /** 503 answers (each one a refused attempt). */
  refused = 0;
  /** Events refused and not yet published again. */
  readonly toRetry: number[] = [];
  private next = 0;

  constructor(
    private readonly cluster: Cluster,
    private readonly userId: string,
    /** The node the next publish goes through. */
    private readonly via: () => CliServer,
    /** Id prefix: publishers of one user need their own, or their ids collide (and dedupe). */
    private readonly prefix = 'p',
  ) {}

  /** Numbers handed out so far (accepted or waiting for a retry). */
  get issued(): number {
    return this.next;
  }

  /** Publishes the next number; resolves with whether it got a seq. */
  async publishNext(): Promise<boolean> {
    return this.publish(this.next++);
  }

  /** Publishes every refused number again, once each; resolves with how many are still refused. */
  async retryRefused(): Promise<number> {
    const pending = this.toRetry.splice(0);
    for (const n of pending) await this.publish(n);
    return this.toRetry.length;
  }

  private async publish(n: number): Promise<boolean> {
    const id = `${this.prefix}-${n}`;
    const answer = await this.cluster.api(this.via(), 'POST', `/v1/users/${this.userId}/events`, {
      event: 'tick',
      id,
      data: n,
    });
    if (answer.status === 503) {
      this.refused++;
      this.toRetry.push(n);
      return false;
    }
    if (answer.status !== 202) {
      throw new Error(`publish ${id}: unexpected ${answer.status} ${await answer.text()}`);
    }
    const { seq } = (await answer.json()) as { seq: number };
    this.accepted.set(id, seq);
    return true;
  }
}
