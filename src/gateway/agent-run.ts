/**
 * Typed helpers for the events of an agent run (PROTOCOL.md section 4),
 * so a Node backend cannot misspell an event or forget the `runId`.
 */
import type {
  AgentCompletedData,
  AgentStartedData,
  ToolCompletedData,
  ToolExecutingData,
} from '../protocol/agent-events.js';
import type { EventInput } from '../protocol/event-input.js';
import type { JsonValue } from '../protocol/frames.js';
import type { EventMap, NoCustomEvents } from '../protocol/typed-events.js';
import type { PublishResult, PublishWaitOptions } from './gateway-types.js';

/** `data` of `emit(event)`: required and typed for an event of the map, any JSON otherwise. */
export type EmitArgs<E, N extends string> = N extends keyof E
  ? [data: E[N], critical?: boolean]
  : [data?: JsonValue, critical?: boolean];

/** What `agentRun` publishes through: a gateway, or anything with its `publish`. */
export interface RunPublisher {
  publish(userId: string, input: EventInput, options?: PublishWaitOptions): Promise<PublishResult>;
}

/** The events of one run; `E` declares the app's own events for `emit`. */
export interface AgentRun<E extends EventMap<E> = NoCustomEvents> {
  readonly runId: string;
  started(data: AgentStartedData, options?: PublishWaitOptions): Promise<PublishResult>;
  thinking(text: string): Promise<PublishResult>;
  /** A delta of the visible answer; deltas of one `messageId` form one message. */
  text(text: string, messageId?: string): Promise<PublishResult>;
  toolExecuting(data: ToolExecutingData): Promise<PublishResult>;
  toolCompleted(data: ToolCompletedData): Promise<PublishResult>;
  completed(data: AgentCompletedData): Promise<PublishResult>;
  /** Any other event of the run (tokens, custom events); typed by `E` when it declares `event`. */
  emit<N extends string>(event: N, ...args: EmitArgs<E, N>): Promise<PublishResult>;
}

/**
 * @example
 * const run = agentRun(gateway, 'alice', 'r1', { threadId: 't1' });
 * await run.started({ agent: 'researcher' }, { waitMs: 5000 }); // waits for the user's socket
 * await run.thinking('Looking at the question…');
 * await run.text('The answer is ', 'm1');
 * await run.completed({ status: 'succeeded', result: 'done' });
 *
 * // The app's own events, declared once:
 * type MyEvents = { citation: { url: string } };
 * const typed = agentRun<MyEvents>(gateway, 'alice', 'r2');
 * await typed.emit('citation', { url: 'https://example.com' }); // data checked by the compiler
 */
export function agentRun<E extends EventMap<E> = NoCustomEvents>(
  gateway: RunPublisher,
  userId: string,
  runId: string,
  options: { threadId?: string } = {},
): AgentRun<E> {
  const base = { runId, ...(options.threadId !== undefined ? { threadId: options.threadId } : {}) };
  const send = (input: EventInput, wait?: PublishWaitOptions): Promise<PublishResult> =>
    gateway.publish(userId, { ...base, ...input }, wait);
  return {
    runId,
    started: (data, wait) => send({ event: 'agent_started', data: data }, wait),
    thinking: (text) => send({ event: 'agent_thinking', data: { text } }),
    text: (text, messageId) =>
      send({ event: 'agent_text', data: messageId === undefined ? { text } : { text, messageId } }),
    toolExecuting: (data) => send({ event: 'tool_executing', data: data }),
    toolCompleted: (data) => send({ event: 'tool_completed', data: data }),
    completed: (data) => send({ event: 'agent_completed', data: data }),
    emit: (event, ...[data, critical]) =>
      send({
        event,
        ...(data !== undefined ? { data } : {}),
        ...(critical !== undefined ? { critical } : {}),
      }),
  };
}
