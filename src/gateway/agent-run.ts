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
import type { Gateway, PublishResult, PublishWaitOptions } from './gateway-types.js';

export interface AgentRun {
  readonly runId: string;
  started(data: AgentStartedData, options?: PublishWaitOptions): Promise<PublishResult>;
  thinking(text: string): Promise<PublishResult>;
  /** A delta of the visible answer; deltas of one `messageId` form one message. */
  text(text: string, messageId?: string): Promise<PublishResult>;
  toolExecuting(data: ToolExecutingData): Promise<PublishResult>;
  toolCompleted(data: ToolCompletedData): Promise<PublishResult>;
  completed(data: AgentCompletedData): Promise<PublishResult>;
  /** Any other event of the run (tokens, custom events). */
  emit(event: string, data?: EventInput['data'], critical?: boolean): Promise<PublishResult>;
}

/**
 * @example
 * const run = agentRun(gateway, 'alice', 'r1', { threadId: 't1' });
 * await run.started({ agent: 'researcher' }, { waitMs: 5000 }); // waits for the user's socket
 * await run.thinking('Looking at the question…');
 * await run.text('The answer is ', 'm1');
 * await run.completed({ status: 'succeeded', result: 'done' });
 */
export function agentRun(
  gateway: Pick<Gateway, 'publish'>,
  userId: string,
  runId: string,
  options: { threadId?: string } = {},
): AgentRun {
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
    emit: (event, data, critical) =>
      send({
        event,
        ...(data !== undefined ? { data } : {}),
        ...(critical !== undefined ? { critical } : {}),
      }),
  };
}
