/**
 * The event that ends an AG-UI stream the server cannot carry on: a drain,
 * lost history, a reader too slow for its bound, an expired token. A stock
 * client takes a stream that just closes for a success with no result, so
 * such a stream never closes silently: it ends with RUN_ERROR, code
 * {@link STREAM_INTERRUPTED_CODE}, naming the cursor to resume from in
 * `metadata.agentsocket.cursor`. Pure.
 */
import { EventType } from '@ag-ui/core';
import type {
  AgentsocketInterruptedMeta,
  AguiEvent,
  AguiOutput,
  StreamInterruptReason,
} from './agui-types.js';

/** RUN_ERROR.code of a stream that ended before its run did; resume with Last-Event-ID. */
export const STREAM_INTERRUPTED_CODE = 'agentsocket.stream_interrupted';

const MESSAGES: Readonly<Record<StreamInterruptReason, string>> = {
  drain: 'the gateway is shutting down; resume with Last-Event-ID',
  history_lost: 'the stream lost events it needed; resume with Last-Event-ID',
  slow_consumer: 'the client read too slowly; resume with Last-Event-ID',
  token_expired: 'the token expired; resume with a fresh token and Last-Event-ID',
};

/**
 * RUN_ERROR for an interrupted stream. `cursor` is the last position sent
 * (what the client holds); the event has no SSE `id:`, as it adds nothing.
 */
export function streamInterrupted(
  epoch: string,
  cursor: string,
  reason: StreamInterruptReason,
): AguiOutput {
  const agentsocket: AgentsocketInterruptedMeta = { epoch, cursor, interrupted: reason };
  const event = {
    type: EventType.RUN_ERROR,
    message: MESSAGES[reason],
    code: STREAM_INTERRUPTED_CODE,
    metadata: { agentsocket },
  } as AguiEvent;
  return { cursor: null, event };
}
