/**
 * Events of one run as `[event, data]` steps, and a fast-check arbitrary of
 * random runs, for the run grammar tests (TypeScript and Lua alike).
 */
import fc from 'fast-check';
import type { JsonValue } from '../../src/protocol/index.js';

export type Step = [event: string, data: JsonValue];

export const started: Step = ['agent_started', { agent: 'a' }];
export const exec = (id: string): Step => [
  'tool_executing',
  { toolCallId: id, tool: 't', args: {} },
];
export const done = (id: string): Step => ['tool_completed', { toolCallId: id, tool: 't' }];
export const completed = (status: string): Step => ['agent_completed', { status }];

const EVENTS = [
  'agent_started',
  'agent_thinking',
  'agent_text',
  'tool_executing',
  'tool_completed',
  'agent_completed',
  'custom.event',
] as const;

/**
 * One random step. Few tool call ids, so duplicates and unknown ids are
 * common; some need escaping in JSON (and in cjson, which escapes `/`).
 */
export const stepArbitrary: fc.Arbitrary<Step> = fc
  .tuple(
    fc.constantFrom(...EVENTS),
    fc.constantFrom('a', 'b', 'c', 'd/e', 'é"\\', '日本\n'),
    fc.constantFrom('succeeded', 'failed', 'cancelled'),
  )
  .map(([event, id, status]): Step => {
    switch (event) {
      case 'tool_executing':
        return exec(id);
      case 'tool_completed':
        return done(id);
      case 'agent_completed':
        return completed(status);
      case 'agent_started':
        return started;
      default:
        return [event, { text: id }];
    }
  });

/** Random runs, most of them begun with `agent_started` so that the later rules are reached. */
export const runStepsArbitrary: fc.Arbitrary<Step[]> = fc
  .tuple(fc.nat(9), fc.array(stepArbitrary, { maxLength: 40 }))
  .map(([coin, steps]) => (coin === 0 ? steps : [started, ...steps]));
