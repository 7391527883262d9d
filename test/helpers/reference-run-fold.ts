/**
 * A reference fold of one run's events into a `RunSnapshot`, written from the
 * rules of the agent-runs issue (protocol 1.1), for the AG-UI tests until the
 * engine's own fold (src/runs) lands; then the tests should use that one.
 *
 * Rules: a reasoning part is consecutive `agent_thinking` deltas (id
 * `r<first seq>`); a text part is consecutive `agent_text` deltas of one
 * `messageId` (id: that messageId, else `m<first seq>`); any other event of
 * the run closes the open part; a merged frame counts from its `seqFrom`.
 */
import type { AgentRunStatus } from '../../src/protocol/agent-events.js';
import type { JsonValue } from '../../src/protocol/frames.js';
import type { AgentsocketEvent } from '../../src/agui/agui-types.js';
import type { RunPart, RunSnapshot, ToolPart } from '../../src/runs/run-types.js';

type Json = { [key: string]: JsonValue };

export function foldRun(events: readonly AgentsocketEvent[]): RunSnapshot {
  const first = events[0];
  if (first?.event !== 'agent_started') throw new Error('a run starts with agent_started');
  const started = first.data as Json;
  const snapshot: RunSnapshot = {
    runId: first.runId ?? '',
    agent: String(started.agent),
    status: 'running',
    startedSeq: first.seq,
    upToSeq: first.seq,
    epoch: first.epoch,
    startedAt: first.ts,
    updatedAt: first.ts,
    parts: [],
  };
  if (first.threadId !== undefined) snapshot.threadId = first.threadId;
  // The raw messageId of the open text part (undefined: generated id).
  let openTextMessageId: string | undefined;
  const close = (): void => {
    const last = snapshot.parts.at(-1);
    if (last !== undefined && last.kind !== 'tool') last.open = false;
  };
  const openPart = (): RunPart | undefined => {
    const last = snapshot.parts.at(-1);
    return last !== undefined && last.kind !== 'tool' && last.open ? last : undefined;
  };
  for (const event of events.slice(1)) {
    const data = event.data as Json;
    const firstSeq = event.seqFrom ?? event.seq;
    snapshot.upToSeq = event.seq;
    snapshot.updatedAt = event.ts;
    const open = openPart();
    switch (event.event) {
      case 'agent_thinking':
        if (open?.kind === 'reasoning') {
          open.text += String(data.text);
        } else {
          close();
          snapshot.parts.push({
            kind: 'reasoning',
            id: `r${firstSeq}`,
            text: String(data.text),
            open: true,
          });
        }
        break;
      case 'agent_text': {
        const messageId = data.messageId === undefined ? undefined : String(data.messageId);
        if (open?.kind === 'text' && openTextMessageId === messageId) {
          open.text += String(data.text);
        } else {
          close();
          openTextMessageId = messageId;
          snapshot.parts.push({
            kind: 'text',
            id: messageId ?? `m${firstSeq}`,
            text: String(data.text),
            open: true,
          });
        }
        break;
      }
      case 'tool_executing':
        close();
        snapshot.parts.push({
          kind: 'tool',
          toolCallId: String(data.toolCallId),
          tool: String(data.tool),
          args: data.args ?? null,
          status: 'running',
        });
        break;
      case 'tool_completed': {
        close();
        const tool = snapshot.parts.find(
          (part): part is ToolPart => part.kind === 'tool' && part.toolCallId === data.toolCallId,
        );
        if (tool === undefined) break;
        tool.status = data.error === undefined ? 'completed' : 'failed';
        if (data.result !== undefined) tool.result = data.result;
        if (data.error !== undefined) tool.error = data.error;
        if (typeof data.durationMs === 'number') tool.durationMs = data.durationMs;
        break;
      }
      case 'agent_completed': {
        close();
        const status = data.status as AgentRunStatus;
        snapshot.status = status;
        snapshot.completed = { status };
        for (const key of ['result', 'error', 'usage'] as const) {
          if (data[key] !== undefined) snapshot.completed[key] = data[key];
        }
        const openTools = snapshot.parts
          .filter((part): part is ToolPart => part.kind === 'tool' && part.status === 'running')
          .map((part) => part.toolCallId);
        if (status !== 'succeeded' && openTools.length > 0)
          snapshot.completed.openToolCalls = openTools;
        break;
      }
      default:
        close();
    }
  }
  return snapshot;
}
