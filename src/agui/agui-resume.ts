/**
 * Starting an AG-UI stream of a run somewhere other than its beginning. A
 * stock AG-UI client verifies each response on its own (a fresh verifier per
 * `runAgent`), so a resumed stream must open with RUN_STARTED and re-open,
 * with their START events, whatever was open at the position; the client's
 * reducer treats a START for an id it already holds as a continuation.
 *
 * - {@link resumeAtCursor}: the client sent `Last-Event-ID` and history still
 *   holds every event after it: RUN_STARTED, the re-opening STARTs, then only
 *   what comes after the cursor.
 * - {@link startFromSnapshot}: no usable cursor: RUN_STARTED, MESSAGES_SNAPSHOT
 *   (the request's messages and the run's, since a snapshot replaces the
 *   client's list), the re-opening STARTs, then the live tail. Never a replay
 *   from the run's start onto a client that may hold part of it.
 *
 * Both return the mapper to feed the events after the position with. Pure.
 */
import { EventType, type Message } from '@ag-ui/core';
import type { RunSnapshot } from '../runs/run-types.js';
import { formatAguiCursor, type AguiPosition } from './agui-cursor.js';
import { partMessageId, toolCallMessageId, toolResultMessageId } from './agui-ids.js';
import {
  AguiMapper,
  completionEvent,
  completionMeta,
  runStarted,
  toolResultContent,
} from './agui-mapping.js';
import type {
  AgentsocketEvent,
  AgentsocketRestatedMeta,
  AguiEvent,
  AguiOutput,
} from './agui-types.js';

/** The first AG-UI events of a stream that starts mid-run, and the mapper to continue with. */
export interface AguiStreamStart {
  outputs: AguiOutput[];
  mapper: AguiMapper;
}

export type AguiResumeErrorCode =
  'epoch_mismatch' | 'snapshot_ahead_of_cursor' | 'cursor_event_missing' | 'index_outside_group';

/** A resume the inputs cannot support; the route answers it with snapshot mode or a 400. */
export class AguiResumeError extends Error {
  override readonly name = 'AguiResumeError';
  constructor(
    readonly code: AguiResumeErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface ResumeAtCursorInput {
  /**
   * The run folded with every one of its events up to the position: up to and
   * including `position.seq` for a whole cursor, up to but excluding it for a
   * part cursor (`<epoch>:<seq>.<index>`).
   */
  snapshot: RunSnapshot;
  position: AguiPosition;
  /** Event `position.seq` itself; required for a part cursor, whose group is re-mapped. */
  cursorEvent?: AgentsocketEvent;
  /** threadId for RUN_STARTED when the run has none (the request's). */
  threadId?: string;
}

/**
 * RUN_STARTED and the re-opening STARTs for what was open at `position`, then
 * (for a part cursor) the rest of that position's group. Feed the returned
 * mapper the events after `position.seq`.
 *
 * @example
 * const { outputs, mapper } = resumeAtCursor({ snapshot: foldedToCursor, position, cursorEvent });
 * const tail = eventsAfter(position.seq).flatMap((event) => mapper.map(event));
 * res.end([...outputs, ...tail].map(encodeSseEvent).join(''));
 */
export function resumeAtCursor(input: ResumeAtCursorInput): AguiStreamStart {
  const { snapshot, position, cursorEvent } = input;
  if (position.epoch !== snapshot.epoch) {
    throw new AguiResumeError(
      'epoch_mismatch',
      `cursor epoch ${position.epoch} is not the run's epoch ${snapshot.epoch}`,
    );
  }
  const partial = position.index !== null;
  if (partial ? snapshot.upToSeq >= position.seq : snapshot.upToSeq > position.seq) {
    throw new AguiResumeError(
      'snapshot_ahead_of_cursor',
      `the snapshot is folded up to seq ${snapshot.upToSeq}, past the cursor ${formatAguiCursor(position)}`,
    );
  }
  const mapper = AguiMapper.fromSnapshot(snapshot, input.threadId);
  const meta = restatedMeta(position);
  const tracker = new OpenTracker(mapper.reopeningStarts());
  const tail: AguiOutput[] = [];
  if (partial) {
    if (cursorEvent?.seq !== position.seq || cursorEvent.epoch !== position.epoch) {
      throw new AguiResumeError(
        'cursor_event_missing',
        `a part cursor needs event ${position.seq} of epoch ${position.epoch}`,
      );
    }
    const group = mapper.map(cursorEvent);
    const received = (position.index ?? 0) + 1;
    if (received >= group.length) {
      throw new AguiResumeError(
        'index_outside_group',
        `event ${position.seq} maps to ${group.length} AG-UI events; ${formatAguiCursor(position)} is not a part of it`,
      );
    }
    for (const output of group.slice(0, received)) tracker.apply(output.event);
    tail.push(...group.slice(received));
  }
  const outputs = restate([runStarted(mapper.identity), ...tracker.starts()], meta);
  if (!partial && snapshot.completed !== undefined) {
    outputs.push(restatedTerminal(mapper, snapshot, position));
  }
  return { outputs: [...outputs, ...tail], mapper };
}

export interface StartFromSnapshotInput {
  /** The run as the engine holds it now; the live tail continues after `upToSeq`. */
  snapshot: RunSnapshot;
  /** `messages` of the client's RunAgentInput, kept in front of the run's own. */
  requestMessages: readonly Message[];
  threadId?: string;
}

/** RUN_STARTED, MESSAGES_SNAPSHOT, the re-opening STARTs (or the terminal event of a finished run). */
export function startFromSnapshot(input: StartFromSnapshotInput): AguiStreamStart {
  const { snapshot } = input;
  const mapper = AguiMapper.fromSnapshot(snapshot, input.threadId);
  const position: AguiPosition = { epoch: snapshot.epoch, seq: snapshot.upToSeq, index: null };
  const own = runMessages(snapshot);
  const ownIds = new Set(own.map((message) => message.id));
  const messages = [...input.requestMessages.filter((m) => !ownIds.has(m.id)), ...own];
  const outputs = restate(
    [
      runStarted(mapper.identity),
      { type: EventType.MESSAGES_SNAPSHOT, messages },
      ...mapper.reopeningStarts(),
    ],
    restatedMeta(position),
  );
  if (snapshot.completed !== undefined) outputs.push(restatedTerminal(mapper, snapshot, position));
  return { outputs, mapper };
}

/**
 * The AG-UI messages of a run snapshot, as a stock client builds them from
 * the run's events: a reasoning message per reasoning part, an assistant
 * message per text part (parts of one id joined, as the client appends), an
 * assistant message with the tool call per tool part, followed by its tool
 * message once the tool completed.
 */
export function runMessages(snapshot: RunSnapshot): Message[] {
  const { runId } = snapshot;
  const messages: Message[] = [];
  const byId = new Map<string, Message & { content: string }>();
  for (const part of snapshot.parts) {
    if (part.kind === 'tool') {
      messages.push({
        id: toolCallMessageId(runId, part.toolCallId),
        role: 'assistant',
        toolCalls: [
          {
            id: part.toolCallId,
            type: 'function',
            function: { name: part.tool, arguments: JSON.stringify(part.args ?? null) },
          },
        ],
      });
      if (part.status !== 'running') {
        messages.push({
          id: toolResultMessageId(runId, part.toolCallId),
          role: 'tool',
          toolCallId: part.toolCallId,
          content: toolResultContent(part.result, part.error),
        });
      }
      continue;
    }
    const id = partMessageId(runId, part.id);
    const earlier = byId.get(id);
    if (earlier !== undefined) {
      earlier.content += part.text;
      continue;
    }
    const message =
      part.kind === 'reasoning'
        ? { id, role: 'reasoning' as const, content: part.text }
        : { id, role: 'assistant' as const, content: part.text };
    byId.set(id, message);
    messages.push(message);
  }
  return messages;
}

/** The START events still open after a run of AG-UI events, in the order they opened. */
class OpenTracker {
  private readonly open = new Map<string, AguiEvent>();

  constructor(starts: readonly AguiEvent[]) {
    for (const start of starts) this.apply(start);
  }

  apply(event: AguiEvent): void {
    switch (event.type) {
      case EventType.TEXT_MESSAGE_START:
        this.open.set(`text:${event.messageId}`, bare(event));
        break;
      case EventType.TEXT_MESSAGE_END:
        this.open.delete(`text:${event.messageId}`);
        break;
      case EventType.REASONING_START:
        this.open.set(`span:${event.messageId}`, bare(event));
        break;
      case EventType.REASONING_END:
        this.open.delete(`span:${event.messageId}`);
        break;
      case EventType.REASONING_MESSAGE_START:
        this.open.set(`reasoning:${event.messageId}`, bare(event));
        break;
      case EventType.REASONING_MESSAGE_END:
        this.open.delete(`reasoning:${event.messageId}`);
        break;
      case EventType.TOOL_CALL_START:
        this.open.set(`tool:${event.toolCallId}`, bare(event));
        break;
      case EventType.TOOL_CALL_END:
        this.open.delete(`tool:${event.toolCallId}`);
        break;
      default:
        break;
    }
  }

  starts(): AguiEvent[] {
    return [...this.open.values()];
  }
}

/** An event without the metadata and timestamp of the position it was mapped at. */
function bare(event: AguiEvent): AguiEvent {
  const { metadata: _metadata, timestamp: _timestamp, ...rest } = event;
  return rest as AguiEvent;
}

function restatedMeta(position: AguiPosition): AgentsocketRestatedMeta {
  return {
    seq: position.seq,
    epoch: position.epoch,
    cursor: formatAguiCursor(position),
    restated: true,
  };
}

function restate(events: readonly AguiEvent[], meta: AgentsocketRestatedMeta): AguiOutput[] {
  return events.map((event) => ({
    cursor: null,
    event: { ...event, metadata: { agentsocket: meta } } as AguiEvent,
  }));
}

/** The terminal event of a finished run again, at the position of the stream's start. */
function restatedTerminal(
  mapper: AguiMapper,
  snapshot: RunSnapshot,
  position: AguiPosition,
): AguiOutput {
  const completed = snapshot.completed;
  const pending = completed?.openToolCalls ?? mapper.state.pendingToolCalls;
  const event = completionEvent(mapper.identity, completed ?? { status: 'succeeded' }, pending);
  const agentsocket: AgentsocketRestatedMeta = {
    ...restatedMeta(position),
    completion: completionMeta(completed ?? null),
  };
  return {
    cursor: formatAguiCursor(position),
    event: { ...event, metadata: { agentsocket } } as AguiEvent,
  };
}
