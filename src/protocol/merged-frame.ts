/**
 * The `event` frame of merged deltas (protocol 1.1): adjacent non-critical
 * `agent_thinking` or `agent_text` deltas of one run (and one `messageId`)
 * sent as one frame whose `text` is their texts concatenated, `seq` the last
 * merged seq and `seqFrom` the first. The frame stands for the whole range.
 */

/** What a merged frame carries; `id` and `ts` are those of the last merged event. */
export interface MergedDelta {
  seqFrom: number;
  seq: number;
  id: string;
  event: 'agent_thinking' | 'agent_text';
  runId: string;
  threadId?: string;
  ts: number;
  text: string;
  /** `agent_text` only: the message the deltas belong to. */
  messageId?: string;
}

/**
 * Encodes a merged delta as an `event` frame, with the fields in the order of
 * every other event frame and `seqFrom` right after `seq`. `critical` is
 * always false: critical events are never merged.
 *
 * @example
 * encodeMergedDeltaFrame({ seqFrom: 4, seq: 6, id: 'ev_6', event: 'agent_thinking',
 *   runId: 'r1', ts: 1732470000000, text: 'abc' });
 * // {"type":"event","seq":6,"seqFrom":4,"id":"ev_6","event":"agent_thinking","runId":"r1",
 * //  "ts":1732470000000,"critical":false,"data":{"text":"abc"}}
 */
export function encodeMergedDeltaFrame(delta: MergedDelta): string {
  // JSON.stringify for every string: once per merged frame, and `messageId`
  // and `text` are free text.
  let head = `{"type":"event","seq":${delta.seq},"seqFrom":${delta.seqFrom},"id":${JSON.stringify(delta.id)},"event":"${delta.event}","runId":${JSON.stringify(delta.runId)}`;
  if (delta.threadId !== undefined) head += `,"threadId":${JSON.stringify(delta.threadId)}`;
  let data = `{"text":${JSON.stringify(delta.text)}`;
  if (delta.messageId !== undefined) data += `,"messageId":${JSON.stringify(delta.messageId)}`;
  return `${head},"ts":${delta.ts},"critical":false,"data":${data}}}`;
}
