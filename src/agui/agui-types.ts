/**
 * The data the AG-UI mapping reads and writes: agentsocket events as a
 * consumer receives them, AG-UI events paired with their cursors, and the
 * `metadata.agentsocket` every AG-UI event carries. Pure types.
 */
import type { Event as AguiEvent } from '@ag-ui/core';
import type { EventFrame, JsonValue } from '../protocol/frames.js';

export type { AguiEvent };

/**
 * One agentsocket event of the run, in seq order, as it reaches a consumer:
 * an `event` frame plus the stream's epoch. A merged delta frame (coalesced
 * `agent_thinking`/`agent_text`) carries `seqFrom` and stands for the whole
 * range `seqFrom..seq`.
 */
export type AgentsocketEvent = Omit<EventFrame, 'type'> & { epoch: string };

/**
 * `metadata.agentsocket` of an AG-UI event mapped from an agentsocket event:
 * the event's identity and the exact cursor to resume after it.
 */
export interface AgentsocketEventMeta {
  seq: number;
  epoch: string;
  id: string;
  event: string;
  /** The position this AG-UI event completes; what `Last-Event-ID` should carry. */
  cursor: string;
  /** Present on a merged delta frame: the first seq it stands for. */
  seqFrom?: number;
  /** On a terminal event: the `agent_completed` data the AG-UI schema has no field for. */
  completion?: { [key: string]: JsonValue };
}

/**
 * `metadata.agentsocket` of an AG-UI event that restates state instead of
 * mapping one event (RUN_STARTED of a resumed stream, a re-opening START,
 * MESSAGES_SNAPSHOT): the position it restates.
 */
export interface AgentsocketRestatedMeta {
  seq: number;
  epoch: string;
  cursor: string;
  restated: true;
  completion?: { [key: string]: JsonValue };
}

/**
 * `metadata.agentsocket` of the RUN_ERROR that ends a stream the server could
 * not carry on (a drain, lost history, a slow reader): where to resume from.
 */
export interface AgentsocketInterruptedMeta {
  epoch: string;
  /** The last position the client received; send it back as `Last-Event-ID`. */
  cursor: string;
  interrupted: StreamInterruptReason;
}

/** Why a stream was ended before its run's terminal event. */
export type StreamInterruptReason = 'drain' | 'history_lost' | 'slow_consumer' | 'token_expired';

export type AgentsocketMeta =
  AgentsocketEventMeta | AgentsocketRestatedMeta | AgentsocketInterruptedMeta;

/** One AG-UI event to send, with its SSE `id:` (null: send no `id:` line). */
export interface AguiOutput {
  /**
   * The cursor for the SSE `id:` line. `null` on restated events: they share
   * the position they restate, and SSE ids must strictly increase.
   */
  cursor: string | null;
  event: AguiEvent;
}
