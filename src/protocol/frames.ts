/**
 * The frames of protocol v1 (PROTOCOL.md section 2, "Frames"): one JSON object
 * per text frame, discriminated by `type`.
 */
import type { RunSnapshot } from '../runs/run-types.js';
import type { ErrorCode } from './error-codes.js';

/** The protocol version carried in `welcome`. */
export const PROTOCOL_VERSION = 1;

/** The subprotocol a browser offers next to `bearer.<jwt>`. */
export const SUBPROTOCOL = 'agentsocket.v1';
/** Prefix of the subprotocol that carries a token from a browser. */
export const BEARER_SUBPROTOCOL_PREFIX = 'bearer.';

/** JSON values: what `data` of an event may hold. */
export type JsonValue =
  string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface ReplayInfo {
  /** The first seq the replay covers (the cursor + 1, or the first one history holds). */
  from: number;
  /** How many `event` frames of replay follow the welcome. */
  count: number;
  /** True when events between the cursor and `from` are lost (trimmed, expired, other epoch). */
  gap: boolean;
  /**
   * Protocol 1.1, with `snapshots=1`: the runs sent as `run_snapshot` frames
   * right after this welcome; their events up to `upToSeq` are not replayed.
   */
  runs?: { runId: string; upToSeq: number }[];
}

export interface WelcomeFrame {
  type: 'welcome';
  protocol: number;
  connectionId: string;
  userId: string;
  epoch: string;
  headSeq: number;
  heartbeatMs: number;
  replay: ReplayInfo;
  /**
   * Server-Sent Events transport only: the key that authorizes this
   * connection's acks (`POST /v1/sse/ack`). Given to the stream's reader alone.
   */
  ackKey?: string;
}

export interface EventFrame {
  type: 'event';
  seq: number;
  /**
   * Protocol 1.1: on a merged delta (`merged-frame.ts`), the first seq it
   * stands for. The frame covers every seq from `seqFrom` to `seq`; it is not
   * a gap, and a cumulative ack of `seq` covers them all.
   */
  seqFrom?: number;
  id: string;
  event: string;
  runId?: string;
  threadId?: string;
  ts: number;
  critical: boolean;
  data: JsonValue;
}

/**
 * Protocol 1.1, with `snapshots=1`: a run folded up to `upToSeq`, sent after
 * `welcome` and before the replayed events; the run's events with seq <=
 * `upToSeq` are then not sent.
 */
export interface RunSnapshotFrame {
  type: 'run_snapshot';
  runId: string;
  upToSeq: number;
  epoch: string;
  run: RunSnapshot;
}

export interface BroadcastFrame {
  type: 'broadcast';
  id: string;
  event: string;
  ts: number;
  data: JsonValue;
}

export interface PingFrame {
  type: 'ping';
}
export interface PongFrame {
  type: 'pong';
}
export interface RefreshedFrame {
  type: 'refreshed';
  expiresAt: number | null;
}
export interface ErrorFrame {
  type: 'error';
  code: ErrorCode;
  message: string;
}

export type ServerFrame =
  | WelcomeFrame
  | EventFrame
  | RunSnapshotFrame
  | BroadcastFrame
  | PingFrame
  | PongFrame
  | RefreshedFrame
  | ErrorFrame;

export interface AckFrame {
  type: 'ack';
  seq: number;
}
export interface RefreshFrame {
  type: 'refresh';
  token: string;
}

export type ClientFrame = AckFrame | PingFrame | PongFrame | RefreshFrame;
