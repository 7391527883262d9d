/**
 * The node's AG-UI streams: admission (drain, blocked users, the per-node and
 * per-user bounds), the subscription to the user's stream while a stream of
 * theirs is here, and the drain, which ends each with RUN_ERROR
 * `agentsocket.stream_interrupted`.
 */
import type { Logger } from 'pino';
import type { StreamEngine } from '../broker/stream-engine.js';
import { GatewayError, RETRY_AFTER_SECONDS } from '../errors.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { AguiStreamOptions } from './agui-options.js';
import {
  AguiRunStream,
  type AguiStreamHost,
  type AguiStreamRequest,
  type AguiStreamSettings,
  type RunReader,
} from './agui-run-stream.js';
import type { NodeLifecycle } from './node-lifecycle.js';
import type { ResolvedOptions } from './options.js';
import type { RunListeners } from './run-listeners.js';
import type { Subscriptions } from './subscriptions.js';

export interface AguiStreamsDeps {
  options: ResolvedOptions;
  agui: AguiStreamOptions;
  listeners: RunListeners;
  subscriptions: Subscriptions;
  streams: Pick<StreamEngine, 'readHistory'>;
  runs: RunReader;
  lifecycle: NodeLifecycle;
  logger: Logger;
  metrics: GatewayMetrics;
  /** Resolves when the engine has started. */
  ready: Promise<void>;
}

export class AguiStreams {
  private readonly host: AguiStreamHost;

  constructor(private readonly deps: AguiStreamsDeps) {
    const { options, agui, listeners, subscriptions } = deps;
    const settings: AguiStreamSettings = {
      coalesceWindowMs: agui.coalesceWindowMs,
      keepAliveMs: agui.keepAliveMs,
      maxBufferedBytes: options.limits.maxBufferedBytes,
      maxReplayBuffer: options.limits.maxReplayBuffer,
    };
    this.host = {
      streams: deps.streams,
      runs: deps.runs,
      settings,
      logger: deps.logger,
      ended: (stream) => {
        listeners.remove(stream);
        deps.metrics.aguiStreams.set(listeners.size);
        subscriptions.release(stream.userId);
      },
      interrupted: (reason) => deps.metrics.aguiInterrupted.inc({ reason }),
    };
  }

  /**
   * A stream of the run, ready to `attach` to a response: nothing is written
   * before it resolves, so every refusal is a plain HTTP error. 404 for a run
   * the user does not have, 429/503 past the bounds, 403 for a blocked user.
   */
  async open(request: AguiStreamRequest): Promise<AguiRunStream> {
    const { lifecycle, listeners, subscriptions, options } = this.deps;
    lifecycle.assertAccepting();
    await this.deps.ready;
    lifecycle.assertStarted();
    if (options.isUserBlocked !== null && (await options.isUserBlocked(request.userId))) {
      throw new GatewayError('forbidden', 'user is blocked');
    }
    lifecycle.assertAccepting();
    const stream = new AguiRunStream(request, this.host);
    const refusal = listeners.add(stream);
    if (refusal === 'user_limit') {
      throw new GatewayError(
        'too_many_connections',
        `at most ${this.deps.agui.maxStreamsPerUser} AG-UI streams per user on a node`,
      );
    }
    if (refusal === 'node_limit') {
      throw new GatewayError(
        'unavailable',
        'the node holds as many AG-UI streams as it may',
        undefined,
        RETRY_AFTER_SECONDS,
      );
    }
    this.deps.metrics.aguiStreams.set(listeners.size);
    const abandon = (): void => stream.abandon();
    request.signal?.addEventListener('abort', abandon, { once: true });
    try {
      if (request.signal?.aborted === true) abandon();
      await subscriptions.acquire(request.userId);
      await stream.prepare();
    } catch (error) {
      stream.abandon();
      throw error;
    } finally {
      request.signal?.removeEventListener('abort', abandon);
    }
    return stream;
  }

  get size(): number {
    return this.deps.listeners.size;
  }

  /** The node drains: every stream ends with `stream_interrupted` (reason `drain`). */
  interruptAll(): void {
    this.deps.listeners.interruptAll('drain');
  }
}
