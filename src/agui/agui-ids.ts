/**
 * The deterministic ids of the AG-UI mapping: derived from the run id, seqs
 * and the publisher's own ids only, so that a replay, a resume and a snapshot
 * of the same run name every message and tool call alike.
 *
 * AG-UI message ids are unique across a conversation (a thread holds many
 * runs, and seqs restart with a new epoch), so each is prefixed with the run id.
 */

// One rule for the fold's part ids and the mapping's (src/runs/part-ids.ts).
export { reasoningPartId, textPartId } from '../runs/part-ids.js';

/** The AG-UI message id of a reasoning or text part. */
export function partMessageId(runId: string, partId: string): string {
  return `${runId}:${partId}`;
}

/** The assistant message a tool call belongs to (`parentMessageId` of TOOL_CALL_START). */
export function toolCallMessageId(runId: string, toolCallId: string): string {
  return `${runId}:call:${toolCallId}`;
}

/** The tool message TOOL_CALL_RESULT mints. */
export function toolResultMessageId(runId: string, toolCallId: string): string {
  return `${runId}:result:${toolCallId}`;
}
