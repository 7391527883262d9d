/**
 * The events of an agent run (PROTOCOL.md section 4, plus `agent_text` of
 * protocol 1.1) and their `data`.
 */
import type { JsonValue } from './frames.js';

// `type` rather than `interface` for the data shapes: object types are
// assignable to `JsonValue`'s index signature, interfaces are not.

/** Any event name a publisher may use. */
export const EVENT_NAME_PATTERN = /^[a-z][a-z0-9_.:-]{0,63}$/;

export type AgentStartedData = {
  agent: string;
  input?: JsonValue;
};
export type AgentThinkingData = {
  text: string;
};
/** A delta of the visible answer; consecutive deltas of one `messageId` form one message. */
export type AgentTextData = {
  text: string;
  messageId?: string;
};
export type ToolExecutingData = {
  toolCallId: string;
  tool: string;
  args: JsonValue;
};
export type ToolCompletedData = {
  toolCallId: string;
  tool: string;
  result?: JsonValue;
  error?: JsonValue;
  durationMs?: number;
};
export type AgentRunStatus = 'succeeded' | 'failed' | 'cancelled';
export type AgentCompletedData = {
  status: AgentRunStatus;
  result?: JsonValue;
  error?: JsonValue;
  usage?: JsonValue;
};

/** `data` of each agent event, by name: the typed event map of server and SDK. */
export interface AgentEventDataMap {
  agent_started: AgentStartedData;
  agent_thinking: AgentThinkingData;
  agent_text: AgentTextData;
  tool_executing: ToolExecutingData;
  tool_completed: ToolCompletedData;
  agent_completed: AgentCompletedData;
}

export type AgentEventName = keyof AgentEventDataMap;

/** Whether each agent event is critical (must be acked) unless the publisher says otherwise. */
export const AGENT_EVENT_CRITICAL: Readonly<Record<AgentEventName, boolean>> = {
  agent_started: true,
  agent_thinking: false,
  agent_text: false,
  tool_executing: false,
  tool_completed: true,
  agent_completed: true,
};

export const AGENT_EVENT_NAMES = Object.keys(AGENT_EVENT_CRITICAL) as AgentEventName[];

export function isAgentEventName(name: string): name is AgentEventName {
  return Object.hasOwn(AGENT_EVENT_CRITICAL, name);
}

/** Critical by default: the agent events' table; any other event is not. */
export function defaultCritical(event: string): boolean {
  return isAgentEventName(event) ? AGENT_EVENT_CRITICAL[event] : false;
}
