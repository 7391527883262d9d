/**
 * What a run is, as data (protocol 1.1): the folded state of the events of one
 * user with one `runId`. Shared by the gateway, the engines, the client SDK and
 * the AG-UI mapping; no I/O and no Node imports here.
 */
import type { AgentRunStatus } from '../protocol/agent-events.js';
import type { JsonValue } from '../protocol/frames.js';

/** Where a run is: `running` until its `agent_completed`, then that event's status. */
export type RunStatus = 'running' | AgentRunStatus;

/** A span of reasoning: consecutive `agent_thinking` deltas. */
export interface ReasoningPart {
  kind: 'reasoning';
  /** Deterministic: derived from the seq of the span's first delta (`r<seq>`). */
  id: string;
  text: string;
  /** True until another kind of event (or the run's end) closes the span. */
  open: boolean;
}

/** A message of the visible answer: consecutive `agent_text` deltas of one `messageId`. */
export interface TextPart {
  kind: 'text';
  /**
   * The deltas' `messageId`, or `m<seq>` of the first delta when they carry
   * none. A message that comes back after another kind of event opens a new
   * part, `<messageId>:<seq>` of its first delta, so part ids stay unique.
   */
  id: string;
  /** The deltas' `messageId`, when they carry one. */
  messageId?: string;
  text: string;
  open: boolean;
}

/** One tool call: its `tool_executing` and, once it came, its `tool_completed`. */
export interface ToolPart {
  kind: 'tool';
  toolCallId: string;
  tool: string;
  args: JsonValue;
  status: 'running' | 'completed' | 'failed';
  result?: JsonValue;
  error?: JsonValue;
  durationMs?: number;
}

export type RunPart = ReasoningPart | TextPart | ToolPart;

/** The `data` of the run's `agent_completed`, kept whole. */
export interface RunCompletion {
  status: AgentRunStatus;
  result?: JsonValue;
  error?: JsonValue;
  usage?: JsonValue;
  /** Tool calls still open when a `failed`/`cancelled` run ended. */
  openToolCalls?: string[];
}

/** A run folded from its events, up to and including `upToSeq` of stream `epoch`. */
export interface RunSnapshot {
  runId: string;
  threadId?: string;
  /** `data.agent` of `agent_started`. */
  agent: string;
  /** `data.input` of `agent_started`, when it had one: what the run was asked (a chat shows it). */
  input?: JsonValue;
  status: RunStatus;
  /** The seq of the run's `agent_started`. */
  startedSeq: number;
  /** The last seq folded into this snapshot. */
  upToSeq: number;
  epoch: string;
  /** `ts` of `agent_started` and of the last folded event, ms since the Unix epoch. */
  startedAt: number;
  updatedAt: number;
  parts: RunPart[];
  completed?: RunCompletion;
  /** True when the snapshot's size cap cut text out of it. */
  truncated?: boolean;
  /**
   * The snapshot's size as JSON, in UTF-8 bytes: an upper bound (by a few
   * bytes) kept by the fold as it goes, so the size cap is checked without
   * serializing the snapshot per event. Measured afresh when missing.
   */
  sizeBytes?: number;
}
