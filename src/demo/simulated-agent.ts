/**
 * A simulated agent run for the demo page: the agent events of
 * docs/protocol.md ("Agent events") with small pauses, as a real agent would
 * stream them: reasoning token by token, one tool call with its arguments and
 * result, then the answer token by token (`agent_text` deltas of one
 * message), then `agent_completed`. It publishes through `agentRun`, so it
 * follows the run grammar.
 */
import { randomUUID } from 'node:crypto';
import { agentRun } from '../gateway/agent-run.js';
import type { PublishResult } from '../gateway/gateway-types.js';
import type { EventInput } from '../protocol/event-input.js';

/** Publishes one event to one user (the gateway's `publish`, or a recorder in tests). */
export type PublishFn = (userId: string, input: EventInput) => Promise<unknown>;

export interface SimulatedAgentOptions {
  /** Pause between two streamed tokens, in ms; the tool call takes 8 of them. 0: no pause. */
  tokenDelayMs: number;
  /** Aborting stops the run; it then ends with `agent_completed` `cancelled`. */
  signal?: AbortSignal;
  /** Default: `run_<uuid>`. */
  runId?: string;
  threadId?: string;
}

export interface SimulatedRunResult {
  runId: string;
  status: 'succeeded' | 'cancelled';
}

export const SIMULATED_AGENT_NAME = 'demo-assistant';
export const SIMULATED_TOOL_NAME = 'search_knowledge_base';
/** The `messageId` of the answer's `agent_text` deltas. */
export const SIMULATED_ANSWER_MESSAGE_ID = 'answer';
const TOOL_CALL_PAUSE_TOKENS = 8;
const MAX_QUOTED_PROMPT = 200;

/** Splits text into word-sized deltas that keep their trailing spaces, like LLM tokens. */
function tokens(text: string): string[] {
  return text.match(/\S+\s*/g) ?? [];
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Streams one simulated run of `prompt` to `userId` through `publish`, one event
 * after the other (each publish awaited, so the user's stream has them in
 * order). Rejects when a publish fails.
 */
export async function runSimulatedAgent(
  publish: PublishFn,
  userId: string,
  prompt: string,
  options: SimulatedAgentOptions,
): Promise<SimulatedRunResult> {
  const runId = options.runId ?? `run_${randomUUID()}`;
  const { signal, tokenDelayMs } = options;
  // The simulated agent never reads what a publish answers.
  const gateway = {
    publish: (u: string, input: EventInput) => publish(u, input) as Promise<PublishResult>,
  };
  const run = agentRun(
    gateway,
    userId,
    runId,
    options.threadId !== undefined ? { threadId: options.threadId } : {},
  );
  const quoted = prompt.trim().replace(/\s+/g, ' ').slice(0, MAX_QUOTED_PROMPT);
  const cancelled = async (): Promise<SimulatedRunResult> => {
    await run.completed({ status: 'cancelled' });
    return { runId, status: 'cancelled' };
  };

  await run.started({ agent: SIMULATED_AGENT_NAME, input: quoted });

  const thinking =
    `The user asks: "${quoted}". I should look this up in the knowledge base ` +
    'before answering, then keep the answer short and cite what I found.';
  for (const text of tokens(thinking)) {
    await pause(tokenDelayMs, signal);
    if (signal?.aborted) return cancelled();
    await run.thinking(text);
  }

  const toolCallId = `call_${randomUUID().slice(0, 8)}`;
  const args = { query: quoted, limit: 3 };
  await run.toolExecuting({ toolCallId, tool: SIMULATED_TOOL_NAME, args });
  const started = Date.now();
  await pause(tokenDelayMs * TOOL_CALL_PAUSE_TOKENS, signal);
  // Cancelled with the tool call open: the grammar accepts it and lists the call.
  if (signal?.aborted) return cancelled();
  const hits = [
    {
      title: 'Streaming agent events',
      snippet: 'Each event gets the next seq of its user stream.',
    },
    { title: 'Resume after a reconnect', snippet: 'Clients resume with lastSeq and epoch.' },
    { title: 'Acknowledgements', snippet: 'Critical events are acked; others in batches.' },
  ];
  await run.toolCompleted({
    toolCallId,
    tool: SIMULATED_TOOL_NAME,
    result: { hits },
    durationMs: Date.now() - started,
  });

  const answer =
    `Here is what I found about "${quoted}": ${hits.length} passages matched. ` +
    `${hits[0]!.snippet} ${hits[1]!.snippet} ${hits[2]!.snippet}`;
  for (const text of tokens(answer)) {
    await pause(tokenDelayMs, signal);
    if (signal?.aborted) return cancelled();
    await run.text(text, SIMULATED_ANSWER_MESSAGE_ID);
  }
  await run.completed({
    status: 'succeeded',
    usage: { inputTokens: tokens(quoted).length, outputTokens: tokens(answer).length },
  });
  return { runId, status: 'succeeded' };
}
