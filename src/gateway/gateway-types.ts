/**
 * The public shape of a running gateway: what the HTTP API, the CLI and a
 * Node backend call. `gateway.ts` implements it.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { EventInput } from '../protocol/event-input.js';
import type { AguiRunStream, AguiStreamRequest } from './agui-run-stream.js';
import type { JsonValue } from '../protocol/frames.js';
import type { SseAckRequest } from '../protocol/sse.js';
import type { EventMap, NoCustomEvents, TypedEventInput } from '../protocol/typed-events.js';
import type { RunSnapshot } from '../runs/run-types.js';

export type ConnectionState = 'connecting' | 'open' | 'closing' | 'closed';

/** A connection as operators see it (`GET /v1/users/{id}/connections`). */
export interface ConnectionSnapshot {
  connectionId: string;
  userId: string;
  state: ConnectionState;
  /** ms since the epoch. */
  connectedAt: number;
  remoteAddress: string;
  userAgent: string | null;
  /** Highest seq this connection acked. */
  ackedSeq: number;
  /** Highest seq written to this connection. */
  sentSeq: number;
  /** Bytes queued for the socket and not yet sent. */
  bufferedBytes: number;
  /** `websocket`, or `sse` for a `GET /v1/sse` stream (absent in records of older nodes). */
  transport?: 'websocket' | 'sse';
  /** ms since the epoch of the last frame from the client. */
  lastSeenAt: number;
  node: string;
}

export interface PublishWaitOptions {
  /**
   * Wait up to this many ms until a connection of the user received the event
   * (acked it, if critical). 0 or absent: answer at once. At most 30 000.
   */
  waitMs?: number;
}

export interface PublishResult {
  seq: number;
  epoch: string;
  id: string;
  /**
   * Without `waitMs`: the user's open connections on every node the event was
   * handed to (counted by the engine in the publish step). With `waitMs`: the
   * connections that reported it received (critical: acked) by the answer.
   */
  delivered: number;
  /** The `id` repeated an earlier publish; nothing was sent again. */
  duplicate: boolean;
  /** An accepted `failed`/`cancelled` `agent_completed` left these tool calls of its run open. */
  openToolCalls?: string[];
}

export interface BatchItem extends EventInput {
  userId: string;
}

export type BatchResult = PublishResult | { error: { code: string; message: string } };

export interface BroadcastResult {
  id: string;
  /**
   * Connections the frame went to: this node's open connections plus the
   * other nodes' counts (presence store), at most a second old.
   */
  connections: number;
}

export interface GatewayStats {
  node: string;
  connections: number;
  users: number;
  events: {
    published: number;
    duplicates: number;
    delivered: number;
    replayed: number;
    acked: number;
    broadcasts: number;
  };
  /** Failures by kind (auth refusals, bad frames, slow consumers, broker errors, …). */
  errors: Record<string, number>;
}

export interface Readiness {
  ready: boolean;
  reasons: string[];
  /** The engine's persistence (`BrokerHealth.persistence`), when it has one to tell. */
  persistence?: { proven: boolean; summary: string };
}

/**
 * A running gateway. `E` declares the app's own events (`protocol/typed-events.ts`):
 * `publish` then checks the `data` of those events at compile time.
 */
export interface Gateway<E extends EventMap<E> = NoCustomEvents> {
  readonly nodeId: string;
  /**
   * Serves the WebSocket endpoint on an existing HTTP server (its `upgrade`
   * event). The gateway's handshake deadline starts once Node has parsed the
   * request head; to cut off clients that drip their headers, create the
   * server with `handshakeServerOptions(ms)` or call `hardenServer(server, ms)`
   * before `listen` (`gateway/harden-server.ts`).
   */
  attach(server: Server): void;
  /** For servers that route upgrades themselves. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  publish<N extends string>(
    userId: string,
    input: TypedEventInput<E, N>,
    options?: PublishWaitOptions,
  ): Promise<PublishResult>;
  /** Validates every item first (a bad one rejects the whole batch); then publishes in order. */
  publishBatch(items: readonly BatchItem[]): Promise<BatchResult[]>;
  broadcast(event: string, data?: JsonValue): Promise<BroadcastResult>;
  /**
   * A stream of one run of a user for an AG-UI SSE response: nothing is
   * written before it resolves (404 for a run the user does not have).
   */
  openAguiStream(request: AguiStreamRequest): Promise<AguiRunStream>;
  /**
   * Serves `GET /v1/sse` (the SSE transport): rejects with the handshake's
   * refusal before any byte; else the response is a connection of this node.
   */
  openSseStream(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** `POST /v1/sse/ack`: throws 404 for an unknown connection or key, 400 for an unsent seq. */
  ackSseStream(request: SseAckRequest): void;
  /** The run's snapshot (every node sees the same: it lives in the engine); null when unknown or expired. */
  readRun(userId: string, runId: string): Promise<RunSnapshot | null>;
  /** The user's most recent runs, newest first; `limit` 1-100, default 20. */
  listRuns(userId: string, limit?: number): Promise<RunSnapshot[]>;
  /** The user's connections on this node. */
  connections(userId: string): ConnectionSnapshot[];
  /**
   * The user's connections on every node: this node's as they are now, the
   * others' as those nodes last recorded them (on open and close, and every
   * 10 s; a dead node's vanish within 30 s). With an engine that keeps no
   * directory (memory: one node), this node's only.
   */
  connectionsEverywhere(userId: string): Promise<ConnectionSnapshot[]>;
  /** Closes every connection of the user on this node (default 4401: logout, revocation). */
  disconnectUser(userId: string, code?: number, reason?: string): number;
  /**
   * Closes every connection of the user on every node (default 4401). Resolves
   * with this node's closed count plus the other nodes' open connections in
   * the directory; rejects with `unavailable` when the engine cannot carry it.
   */
  disconnectUserEverywhere(userId: string, code?: number): Promise<number>;
  stats(): GatewayStats;
  readiness(): Readiness;
  /** Refuses new handshakes (503), closes open connections with 1001, waits for pending publishes. */
  close(): Promise<void>;
}
