/**
 * Typed custom events: an app declares the `data` of its own events once, as
 * an event map, and hands it to the client (`new AgentSocketClient<MyEvents>`)
 * and to the server side (`createGateway<MyEvents>`, `agentRun<MyEvents>`).
 * Types only; the gateway still validates every publish at run time.
 *
 * Declare data shapes with `type`, not `interface` (as agent-events.ts does):
 * an interface is not assignable to `JsonValue`'s index signature.
 *
 * @example
 * type MyEvents = {
 *   token: { text: string; index: number };
 *   'order.shipped': { orderId: string };
 * };
 * const client = new AgentSocketClient<MyEvents>({ url, token });
 * client.onEvent('order.shipped', (e) => show(e.data.orderId)); // e.data: { orderId: string }
 */
import type { AgentEventDataMap } from './agent-events.js';
import type { EventInput } from './event-input.js';
import type { EventFrame, JsonValue } from './frames.js';

/** An event map: event name → the JSON shape of its `data`. */
export type EventMap<E> = { [K in keyof E]: JsonValue };

/** The default event map: no event of the app's own declared. */
export type NoCustomEvents = Record<never, never>;

/** Every event name with a declared `data`: the agent events and the app's own. */
export type KnownEventName<E> = keyof AgentEventDataMap | (keyof E & string);

/** `data` of event `N`: declared by the app, else by the agent events, else any JSON. */
export type EventDataOf<E, N extends string> = N extends keyof E
  ? E[N]
  : N extends keyof AgentEventDataMap
    ? AgentEventDataMap[N]
    : JsonValue;

/**
 * An event frame whose `data` is typed by its name. Agent events always carry
 * a `runId`; the app's own events carry one when they were published with it.
 */
export type TypedEventFrame<E, N extends string> = Omit<EventFrame, 'event' | 'data' | 'runId'> & {
  event: N;
  data: EventDataOf<E, N>;
} & (N extends keyof AgentEventDataMap ? { runId: string } : { runId?: string });

/**
 * What a publisher hands in for event `N` of the app's map `E`: an event the
 * map declares needs its `data` in the declared shape; any other event name
 * takes any JSON, as `EventInput` does. Agent events keep their own typed
 * helpers (`agentRun`) and are checked here only when the map declares them.
 */
export type TypedEventInput<E, N extends string = string> = Omit<EventInput, 'event' | 'data'> & {
  event: N;
} & (N extends keyof E ? { data: E[N] } : { data?: JsonValue });
