/**
 * agentsocket events of ONE run -> AG-UI events (AG-UI protocol 1.0, as
 * @ag-ui/core 1.0 types it). Pure and deterministic: the same events give the
 * same AG-UI events with the same ids, so a replay or a resume names every
 * message alike. No I/O; the SSE route feeds it and frames what it returns.
 *
 * | agentsocket                      | AG-UI                                                      |
 * |----------------------------------|------------------------------------------------------------|
 * | agent_started                    | RUN_STARTED                                                |
 * | agent_thinking                   | REASONING_START, REASONING_MESSAGE_START (first of a span), REASONING_MESSAGE_CONTENT |
 * | agent_text                       | TEXT_MESSAGE_START (first of a message), TEXT_MESSAGE_CONTENT |
 * | tool_executing                   | TOOL_CALL_START, TOOL_CALL_ARGS (JSON of args), TOOL_CALL_END |
 * | tool_completed                   | TOOL_CALL_RESULT, once per tool call                       |
 * | agent_completed succeeded        | RUN_FINISHED {result, outcome: success + pendingToolCallIds} |
 * | agent_completed cancelled        | RUN_FINISHED {outcome: cancelled}                          |
 * | agent_completed failed           | RUN_ERROR {message, code}                                  |
 * | state_snapshot / state_delta     | STATE_SNAPSHOT / STATE_DELTA (a delta that is no valid JSON Patch: CUSTOM) |
 * | anything else, or malformed data | CUSTOM {name: the event name, value: data}                 |
 *
 * An open reasoning span or text message is closed (…_END) before any event
 * that is not its own next delta. Nothing is produced after the terminal event.
 */
import { EventType, type RunFinishedEvent } from '@ag-ui/core';
import type { AgentRunStatus } from '../protocol/agent-events.js';
import type { JsonValue } from '../protocol/frames.js';
import type { RunCompletion, RunSnapshot } from '../runs/run-types.js';
import { formatAguiCursor } from './agui-cursor.js';
import {
  partMessageId,
  reasoningPartId,
  textPartId,
  toolCallMessageId,
  toolResultMessageId,
} from './agui-ids.js';
import type {
  AgentsocketEvent,
  AgentsocketEventMeta,
  AguiEvent,
  AguiOutput,
} from './agui-types.js';
import { isJsonPatch } from './json-patch-shape.js';

/** Which run a mapper speaks for, and under which ids. */
export interface AguiRunIdentity {
  runId: string;
  /** RUN_STARTED/RUN_FINISHED's threadId: the run's, else the request's, else the run id. */
  threadId: string;
  epoch: string;
}

/** The reasoning span or text message open at a position (at most one is). */
export type OpenConstruct =
  | { kind: 'reasoning'; partId: string }
  /** `messageId`: the publisher's, or undefined when its deltas carry none. */
  | { kind: 'text'; partId: string; messageId: string | undefined };

/** Everything a mapper remembers; what {@link AguiMapper.fromSnapshot} restores. */
export interface AguiMapperState {
  /** RUN_STARTED was produced (or restated). */
  started: boolean;
  /** The terminal event was produced: nothing more will be. */
  finished: boolean;
  open: OpenConstruct | null;
  /** Tool calls started and not answered, in start order. */
  pendingToolCalls: readonly string[];
  /** Tool calls answered: a second tool_completed for one goes out as CUSTOM. */
  answeredToolCalls: readonly string[];
  /** The publisher's messageIds of the text parts so far: a reused one names a new part (`textPartId`). */
  textMessageIds: readonly string[];
}

/** Bound of each tool-call set a mapper keeps; past it the oldest entry is forgotten. */
export const MAX_TRACKED_TOOL_CALLS = 4096;
/** Bound of the text messageIds a mapper keeps; past it the oldest is forgotten. */
export const MAX_TRACKED_TEXT_MESSAGE_IDS = 4096;

/** RUN_ERROR.code of a run whose agent_completed says failed without a string `error.code`. */
export const AGENT_FAILED_CODE = 'agentsocket.agent_failed';

/**
 * The mapper of one run. Feed it the run's events in seq order; restore it
 * from a snapshot ({@link AguiMapper.fromSnapshot}) to continue mid-run.
 *
 * @example
 * const mapper = new AguiMapper({ runId: 'run-1', threadId: 'thread-1', epoch });
 * for (const event of runEvents) {
 *   for (const output of mapper.map(event)) res.write(encodeSseEvent(output));
 * }
 */
export class AguiMapper {
  private started: boolean;
  private finished: boolean;
  private open: OpenConstruct | null;
  private readonly pending: Set<string>;
  private readonly answered: Set<string>;
  private readonly textMessageIds: Set<string>;

  constructor(
    readonly identity: AguiRunIdentity,
    state: Partial<AguiMapperState> = {},
  ) {
    this.started = state.started ?? false;
    this.finished = state.finished ?? false;
    this.open = state.open ?? null;
    this.pending = new Set(state.pendingToolCalls?.slice(-MAX_TRACKED_TOOL_CALLS));
    this.answered = new Set(state.answeredToolCalls?.slice(-MAX_TRACKED_TOOL_CALLS));
    this.textMessageIds = new Set(state.textMessageIds?.slice(-MAX_TRACKED_TEXT_MESSAGE_IDS));
  }

  /**
   * A mapper in the state a from-scratch mapper has after the events folded
   * into `snapshot` (RUN_STARTED counts as produced).
   */
  static fromSnapshot(snapshot: RunSnapshot, threadId?: string): AguiMapper {
    const last = snapshot.parts.at(-1);
    let open: OpenConstruct | null = null;
    if (last?.kind === 'reasoning' && last.open) open = { kind: 'reasoning', partId: last.id };
    if (last?.kind === 'text' && last.open) {
      open = { kind: 'text', partId: last.id, messageId: last.messageId };
    }
    const tools = snapshot.parts.filter((part) => part.kind === 'tool');
    const textMessageIds = snapshot.parts.flatMap((part) =>
      part.kind === 'text' && part.messageId !== undefined ? [part.messageId] : [],
    );
    return new AguiMapper(
      {
        runId: snapshot.runId,
        threadId: snapshot.threadId ?? threadId ?? snapshot.runId,
        epoch: snapshot.epoch,
      },
      {
        started: true,
        finished: snapshot.status !== 'running',
        open,
        pendingToolCalls: tools.filter((t) => t.status === 'running').map((t) => t.toolCallId),
        answeredToolCalls: tools.filter((t) => t.status !== 'running').map((t) => t.toolCallId),
        textMessageIds,
      },
    );
  }

  get state(): AguiMapperState {
    return {
      started: this.started,
      finished: this.finished,
      open: this.open,
      pendingToolCalls: [...this.pending],
      answeredToolCalls: [...this.answered],
      textMessageIds: [...this.textMessageIds],
    };
  }

  /**
   * The AG-UI events of one agentsocket event of this run, each with its
   * cursor (`<epoch>:<seq>` on the last, `<epoch>:<seq>.<index>` before it)
   * and `metadata.agentsocket`. Events of another run, and anything after the
   * terminal event, give nothing.
   */
  map(event: AgentsocketEvent): AguiOutput[] {
    if (this.finished || (event.runId !== undefined && event.runId !== this.identity.runId)) {
      return [];
    }
    const bare = this.bareEvents(event);
    const meta = eventMeta(event);
    return bare.map((aguiEvent, index) => {
      const cursor = formatAguiCursor({
        epoch: event.epoch,
        seq: event.seq,
        index: index === bare.length - 1 ? null : index,
      });
      const agentsocket: AgentsocketEventMeta = { ...meta, cursor };
      if (isTerminal(aguiEvent)) agentsocket.completion = completionMeta(event.data);
      const stamped = { ...aguiEvent, metadata: { agentsocket } } as AguiEvent;
      if (Number.isSafeInteger(event.ts)) stamped.timestamp = event.ts;
      return { cursor, event: stamped };
    });
  }

  /** The START events that re-open what is open now, without metadata. */
  reopeningStarts(): AguiEvent[] {
    if (this.open === null) return [];
    const messageId = partMessageId(this.identity.runId, this.open.partId);
    return this.open.kind === 'reasoning'
      ? [
          { type: EventType.REASONING_START, messageId },
          { type: EventType.REASONING_MESSAGE_START, messageId, role: 'reasoning' },
        ]
      : [{ type: EventType.TEXT_MESSAGE_START, messageId, role: 'assistant' }];
  }

  private bareEvents(event: AgentsocketEvent): AguiEvent[] {
    const { data } = event;
    const record = isRecord(data) ? data : {};
    const firstSeq = event.seqFrom ?? event.seq;
    switch (event.event) {
      case 'agent_started':
        if (this.started) break;
        this.started = true;
        return [runStarted(this.identity)];
      case 'agent_thinking':
        if (typeof record.text !== 'string') break;
        return this.delta('reasoning', undefined, firstSeq, record.text);
      case 'agent_text': {
        const { text, messageId } = record;
        if (typeof text !== 'string') break;
        if (messageId !== undefined && typeof messageId !== 'string') break;
        return this.delta('text', messageId, firstSeq, text);
      }
      case 'tool_executing': {
        const { toolCallId, tool, args } = record;
        if (typeof toolCallId !== 'string' || typeof tool !== 'string') break;
        if (this.pending.has(toolCallId) || this.answered.has(toolCallId)) break;
        remember(this.pending, toolCallId);
        return this.opened([
          ...this.close(),
          {
            type: EventType.TOOL_CALL_START,
            toolCallId,
            toolCallName: tool,
            parentMessageId: toolCallMessageId(this.identity.runId, toolCallId),
          },
          { type: EventType.TOOL_CALL_ARGS, toolCallId, delta: JSON.stringify(args ?? null) },
          { type: EventType.TOOL_CALL_END, toolCallId },
        ]);
      }
      case 'tool_completed': {
        const { toolCallId } = record;
        if (typeof toolCallId !== 'string' || this.answered.has(toolCallId)) break;
        this.pending.delete(toolCallId);
        remember(this.answered, toolCallId);
        return this.opened([
          ...this.close(),
          {
            type: EventType.TOOL_CALL_RESULT,
            messageId: toolResultMessageId(this.identity.runId, toolCallId),
            toolCallId,
            content: toolResultContent(record.result, record.error),
            role: 'tool',
          },
        ]);
      }
      case 'agent_completed': {
        const status = record.status;
        if (status !== 'succeeded' && status !== 'failed' && status !== 'cancelled') break;
        const closing = this.close();
        const terminal = completionEvent(this.identity, { ...record, status }, [...this.pending]);
        this.finished = true;
        return this.opened([...closing, terminal]);
      }
      case 'state_snapshot':
        return this.opened([...this.close(), { type: EventType.STATE_SNAPSHOT, snapshot: data }]);
      case 'state_delta':
        if (!isJsonPatch(data)) break;
        return this.opened([...this.close(), { type: EventType.STATE_DELTA, delta: data }]);
    }
    return this.opened([
      ...this.close(),
      { type: EventType.CUSTOM, name: event.event, value: data },
    ]);
  }

  /** A thinking or text delta: continues the open construct of its kind, or opens one. */
  private delta(
    kind: OpenConstruct['kind'],
    messageId: string | undefined,
    firstSeq: number,
    text: string,
  ): AguiEvent[] {
    const open = this.open;
    // A named delta continues the open message of that id; an unnamed one, an
    // open message whose id was generated.
    const continues =
      open !== null &&
      open.kind === kind &&
      (open.kind === 'reasoning' || open.messageId === messageId);
    const out: AguiEvent[] = [];
    if (!continues) {
      out.push(...this.close());
      if (kind === 'reasoning') {
        this.open = { kind, partId: reasoningPartId(firstSeq) };
      } else {
        const usedBefore = messageId !== undefined && this.textMessageIds.has(messageId);
        this.open = { kind, partId: textPartId(firstSeq, messageId, usedBefore), messageId };
        if (messageId !== undefined)
          remember(this.textMessageIds, messageId, MAX_TRACKED_TEXT_MESSAGE_IDS);
      }
      out.push(...this.reopeningStarts());
    }
    const id = partMessageId(this.identity.runId, (this.open as OpenConstruct).partId);
    out.push(
      kind === 'reasoning'
        ? { type: EventType.REASONING_MESSAGE_CONTENT, messageId: id, delta: text }
        : { type: EventType.TEXT_MESSAGE_CONTENT, messageId: id, delta: text },
    );
    return this.opened(out);
  }

  /** The END events of the open construct; nothing is open afterwards. */
  private close(): AguiEvent[] {
    const open = this.open;
    if (open === null) return [];
    this.open = null;
    const messageId = partMessageId(this.identity.runId, open.partId);
    return open.kind === 'reasoning'
      ? [
          { type: EventType.REASONING_MESSAGE_END, messageId },
          { type: EventType.REASONING_END, messageId },
        ]
      : [{ type: EventType.TEXT_MESSAGE_END, messageId }];
  }

  /** A run's first events need RUN_STARTED in front, even if agent_started never came. */
  private opened(events: AguiEvent[]): AguiEvent[] {
    if (this.started) return events;
    this.started = true;
    return [runStarted(this.identity), ...events];
  }
}

export function runStarted(identity: AguiRunIdentity): AguiEvent {
  return { type: EventType.RUN_STARTED, threadId: identity.threadId, runId: identity.runId };
}

/**
 * RUN_FINISHED or RUN_ERROR for a completion, without metadata. `pending`:
 * tool calls left unanswered, for a succeeded run's `pendingToolCallIds`.
 */
export function completionEvent(
  identity: AguiRunIdentity,
  completion: { status: AgentRunStatus; result?: JsonValue; error?: JsonValue },
  pending: readonly string[],
): AguiEvent {
  const { runId, threadId } = identity;
  if (completion.status === 'failed') {
    const error = completion.error;
    const errorRecord = isRecord(error) ? error : {};
    const message =
      typeof error === 'string'
        ? error
        : typeof errorRecord.message === 'string'
          ? errorRecord.message
          : error === undefined || error === null
            ? 'the agent run failed'
            : JSON.stringify(error);
    const code = typeof errorRecord.code === 'string' ? errorRecord.code : AGENT_FAILED_CODE;
    return { type: EventType.RUN_ERROR, message, code };
  }
  const finished: RunFinishedEvent = {
    type: EventType.RUN_FINISHED,
    threadId,
    runId,
    outcome:
      completion.status === 'cancelled'
        ? { type: 'cancelled' }
        : { type: 'success', pendingToolCallIds: [...pending] },
  };
  // RUN_FINISHED.result may not be null (the schema refuses it, fatally).
  if (completion.result !== undefined && completion.result !== null) {
    finished.result = completion.result;
  }
  return finished;
}

/** What `metadata.agentsocket.completion` keeps of a completion: all but the result. */
export function completionMeta(data: JsonValue | RunCompletion): { [key: string]: JsonValue } {
  const { result: _result, ...rest } = (isRecord(data) ? data : {}) as Record<string, JsonValue>;
  return rest;
}

/**
 * TOOL_CALL_RESULT.content (a string) of a tool's outcome: a string result
 * as is, any other result as JSON; with an error, `{"error": …}` (and the
 * result beside it if there is one), since the event has no error field.
 */
export function toolResultContent(
  result: JsonValue | undefined,
  error: JsonValue | undefined,
): string {
  if (error === undefined)
    return typeof result === 'string' ? result : JSON.stringify(result ?? null);
  return JSON.stringify(result === undefined ? { error } : { error, result });
}

function eventMeta(event: AgentsocketEvent): Omit<AgentsocketEventMeta, 'cursor'> {
  const meta: Omit<AgentsocketEventMeta, 'cursor'> = {
    seq: event.seq,
    epoch: event.epoch,
    id: event.id,
    event: event.event,
  };
  if (event.seqFrom !== undefined) meta.seqFrom = event.seqFrom;
  return meta;
}

function isTerminal(event: AguiEvent): boolean {
  return event.type === EventType.RUN_FINISHED || event.type === EventType.RUN_ERROR;
}

/** Adds to a bounded insertion-ordered set, forgetting the oldest entry past the bound. */
function remember(set: Set<string>, value: string, bound = MAX_TRACKED_TOOL_CALLS): void {
  set.add(value);
  if (set.size > bound) {
    const oldest = set.values().next().value;
    if (oldest !== undefined) set.delete(oldest);
  }
}

function isRecord(value: unknown): value is { [key: string]: JsonValue } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
