/**
 * Validation of a publish (PROTOCOL.md sections 4 and 5): what a backend sends
 * to address one event to one user. Shared by the HTTP API and the in-process
 * API so both refuse the same things with the same field names.
 */
import { defaultCritical, isAgentEventName, EVENT_NAME_PATTERN } from './agent-events.js';
import type { JsonValue } from './frames.js';

/** An event as a publisher hands it in. */
export interface EventInput {
  event: string;
  data?: JsonValue;
  runId?: string;
  threadId?: string;
  critical?: boolean;
  /** Idempotency key: a repeat within the history window returns the first seq. */
  id?: string;
}

/** An event after validation, with its defaults applied and `data` serialized once. */
export interface ValidEvent {
  event: string;
  data: JsonValue;
  /** `JSON.stringify(data)`, computed once for the size check and reused for the frame. */
  dataJson: string;
  runId?: string;
  threadId?: string;
  critical: boolean;
  id?: string;
}

export interface ValidationFailure {
  field: string;
  message: string;
  /** True when the failure is a size limit (413), not a malformed field (400). */
  tooLarge?: boolean;
}

export type Validated<T> = { ok: true; value: T } | { ok: false; failure: ValidationFailure };

/** Ids, run ids and thread ids: short, printable, no whitespace. */
export const REF_PATTERN = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/**
 * How deep `data` may nest arrays and objects: `[]` and `{}` are 1 deep,
 * `[[0]]` is 2 (docs/security.md, `limits.maxDataDepth`). Agent payloads are
 * a few levels deep; 64 leaves room for tool arguments and results while
 * keeping every parser downstream (the broker, the browser) far from its
 * stack limit.
 */
export const DEFAULT_MAX_DATA_DEPTH = 64;

function fail(field: string, message: string, tooLarge = false): Validated<never> {
  return { ok: false, failure: { field, message, tooLarge } };
}

/** UTF-8 length of a string without allocating (no Node `Buffer` in protocol/). */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True when an array's item or an object's own value is an array or object. */
function holdsContainer(container: object): boolean {
  // Indexed and `for...in` loops: no array of the values per publish. `for...in`
  // also visits inherited enumerable keys; one of those only sends the data
  // to the full walk, which decides.
  if (Array.isArray(container)) {
    for (let i = 0; i < container.length; i++) {
      const child: unknown = container[i];
      if (typeof child === 'object' && child !== null) return true;
    }
    return false;
  }
  for (const key in container) {
    const child: unknown = (container as Record<string, unknown>)[key];
    if (typeof child === 'object' && child !== null) return true;
  }
  return false;
}

/**
 * Checks how deep `data` nests, without recursion: a recursive walk, like
 * `JSON.stringify` itself, overflows the stack on data nested some thousands
 * deep, which a body under the size limit can be. Depth first, so it stops
 * at the first container past `maxDepth` (a cyclic object of the in-process
 * API included). Each container serializes to at least 2 bytes, so past
 * `maxDataBytes / 2` of them the data cannot fit its limit: that bounds the
 * walk even for in-process objects that share one child many times over.
 */
function checkDataNesting(
  data: unknown,
  maxDepth: number,
  maxDataBytes: number,
): ValidationFailure | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  // The common payload, one flat object or array (1 deep): no stacks for it.
  if (maxDepth >= 1 && !holdsContainer(data)) return undefined;
  const maxContainers = Math.floor(maxDataBytes / 2);
  const containers: object[] = [data];
  const depths: number[] = [1];
  let seen = 1;
  while (containers.length > 0) {
    const container = containers.pop() as object;
    const depth = depths.pop() as number;
    if (depth > maxDepth) {
      return {
        field: 'data',
        message: `data nests arrays and objects more than ${maxDepth} deep`,
      };
    }
    const children: unknown[] = Array.isArray(container) ? container : Object.values(container);
    for (const child of children) {
      if (typeof child !== 'object' || child === null) continue;
      if (++seen > maxContainers) {
        return {
          field: 'data',
          message: `data holds more than ${maxContainers} arrays and objects; it cannot fit the limit of ${maxDataBytes} bytes`,
          tooLarge: true,
        };
      }
      containers.push(child);
      depths.push(depth + 1);
    }
  }
  return undefined;
}

/**
 * Validates the `data` of an event or a broadcast: nesting (`maxDataDepth`),
 * JSON-serializable, and at most `maxDataBytes` serialized. The one check of
 * `data` for every route and the in-process API; the failure names `data`.
 */
export function validateEventData(
  data: unknown,
  maxDataBytes: number,
  maxDataDepth: number = DEFAULT_MAX_DATA_DEPTH,
): Validated<{ data: JsonValue; dataJson: string }> {
  const nesting = checkDataNesting(data, maxDataDepth, maxDataBytes);
  if (nesting) return { ok: false, failure: nesting };
  const value: JsonValue = data === undefined ? null : (data as JsonValue);
  let dataJson: string;
  try {
    dataJson = JSON.stringify(value);
  } catch {
    return fail('data', 'data must be JSON-serializable');
  }
  // `undefined`, a function or a symbol serialize to nothing: not JSON.
  if (typeof dataJson !== 'string') return fail('data', 'data must be JSON-serializable');
  // Byte length, not string length: the limit is on the wire size. A string
  // a third of the limit long cannot exceed it, so most events skip the count.
  const bytes = dataJson.length * 3 <= maxDataBytes ? dataJson.length : utf8ByteLength(dataJson);
  if (bytes > maxDataBytes) {
    return fail('data', `data is ${bytes} bytes serialized; the limit is ${maxDataBytes}`, true);
  }
  return { ok: true, value: { data: value, dataJson } };
}

/** A reference field (`runId`, `threadId`, `id`) that is present and malformed. */
function refFailure(field: string, value: unknown): Validated<never> | undefined {
  if (value === undefined || (typeof value === 'string' && REF_PATTERN.test(value)))
    return undefined;
  return fail(field, `${field} must be 1-128 characters of [A-Za-z0-9._:@/+=-]`);
}

const ALLOWED_FIELDS = new Set(['event', 'data', 'runId', 'threadId', 'critical', 'id']);

/**
 * The longest `toolCallId` and `messageId`: the run grammar keeps tool call ids
 * in its per-run state and snapshots use message ids as part ids, so both are
 * bounded like the other references.
 */
export const MAX_AGENT_REF_LENGTH = 128;

/** Checks the shape of `data` for the agent events. Other events take any JSON. */
function checkAgentData(event: string, data: unknown): ValidationFailure | undefined {
  if (!isAgentEventName(event)) return undefined;
  if (!isRecord(data)) return { field: 'data', message: `${event} needs an object as data` };
  const str = (key: string): ValidationFailure | undefined =>
    typeof data[key] === 'string'
      ? undefined
      : { field: `data.${key}`, message: `${event} needs data.${key} as a string` };
  const ref = (key: string, optional = false): ValidationFailure | undefined => {
    const value = data[key];
    if (optional && value === undefined) return undefined;
    return typeof value === 'string' && value.length >= 1 && value.length <= MAX_AGENT_REF_LENGTH
      ? undefined
      : {
          field: `data.${key}`,
          message: `data.${key} must be a string of 1-${MAX_AGENT_REF_LENGTH} characters`,
        };
  };
  switch (event) {
    case 'agent_started':
      return str('agent');
    case 'agent_thinking':
      return str('text');
    case 'agent_text':
      return str('text') ?? ref('messageId', true);
    case 'tool_executing':
      return (
        ref('toolCallId') ??
        str('tool') ??
        (data.args === undefined
          ? { field: 'data.args', message: 'tool_executing needs data.args' }
          : undefined)
      );
    case 'tool_completed':
      return (
        ref('toolCallId') ??
        str('tool') ??
        (data.durationMs !== undefined &&
        !(typeof data.durationMs === 'number' && data.durationMs >= 0)
          ? { field: 'data.durationMs', message: 'data.durationMs must be a non-negative number' }
          : undefined)
      );
    case 'agent_completed':
      return data.status === 'succeeded' || data.status === 'failed' || data.status === 'cancelled'
        ? undefined
        : {
            field: 'data.status',
            message: 'agent_completed needs data.status: succeeded, failed or cancelled',
          };
  }
}

/**
 * Validates one event input. `maxDataBytes` bounds the serialized `data`
 * (default 256 KiB, PROTOCOL.md limits table), `maxDataDepth` its nesting
 * (`validateEventData`).
 */
export function validateEventInput(
  input: unknown,
  maxDataBytes: number,
  maxDataDepth: number = DEFAULT_MAX_DATA_DEPTH,
): Validated<ValidEvent> {
  if (!isRecord(input)) return fail('body', 'an event must be a JSON object');
  for (const key in input) {
    if (!ALLOWED_FIELDS.has(key)) return fail(key, `unknown field "${key.slice(0, 64)}"`);
  }
  const { event, data, runId, threadId, critical, id } = input;
  if (typeof event !== 'string' || !EVENT_NAME_PATTERN.test(event)) {
    return fail('event', 'event must match ^[a-z][a-z0-9_.:-]{0,63}$');
  }
  const badRef =
    refFailure('runId', runId) ?? refFailure('threadId', threadId) ?? refFailure('id', id);
  if (badRef) return badRef;
  if (typeof id === 'string' && id.startsWith('ev_')) {
    return fail('id', 'ids starting with "ev_" are reserved for generated ids');
  }
  if (isAgentEventName(event) && runId === undefined) {
    return fail('runId', `${event} needs a runId`);
  }
  if (critical !== undefined && typeof critical !== 'boolean') {
    return fail('critical', 'critical must be a boolean');
  }
  const agentFailure = checkAgentData(event, data);
  if (agentFailure) return { ok: false, failure: agentFailure };
  const checkedData = validateEventData(data, maxDataBytes, maxDataDepth);
  if (!checkedData.ok) return checkedData;
  const valid: ValidEvent = {
    event,
    data: checkedData.value.data,
    dataJson: checkedData.value.dataJson,
    critical: typeof critical === 'boolean' ? critical : defaultCritical(event),
  };
  // Assigned one by one rather than spread: this runs once per publish.
  if (runId !== undefined) valid.runId = runId as string;
  if (threadId !== undefined) valid.threadId = threadId as string;
  if (id !== undefined) valid.id = id as string;
  return { ok: true, value: valid };
}
