/**
 * An `event` frame as the AG-UI mapping reads it: the frame's fields plus the
 * stream's epoch. Pure.
 */
import type { EventFrame } from '../protocol/frames.js';
import type { AgentsocketEvent } from './agui-types.js';

/** Reads an `event` frame's text (a raw event or a merged delta) of stream `epoch`. */
export function agentsocketEventOf(frameText: string, epoch: string): AgentsocketEvent {
  const frame = JSON.parse(frameText) as EventFrame;
  const event: AgentsocketEvent = {
    seq: frame.seq,
    epoch,
    id: frame.id,
    event: frame.event,
    ts: frame.ts,
    critical: frame.critical,
    data: frame.data ?? null,
  };
  if (frame.seqFrom !== undefined) event.seqFrom = frame.seqFrom;
  if (frame.runId !== undefined) event.runId = frame.runId;
  if (frame.threadId !== undefined) event.threadId = frame.threadId;
  return event;
}
