/**
 * Decoding what the Redis engine reads back: live messages, publish
 * outcomes, pub/sub messages between nodes and presence values (a history
 * read's reply: `read-reply.ts`). Everything from the wire is checked, never
 * trusted: a malformed message is dropped (pub/sub) or rejects the step.
 */
import { RunGrammarError } from '../../errors.js';
import type { EncodedRunEvent } from '../../protocol/event-frame.js';
import { isValidUserId } from '../../protocol/user-id.js';
import { RUN_GRAMMAR_CODES, type RunGrammarCode } from '../../runs/run-grammar.js';
import type { ControlMessage, DeliveryReport } from '../cluster-bus.js';
import type { ConnectionRecord } from '../presence-store.js';
import { StoredEvent } from '../stored-event.js';
import type { PublishOutcome } from '../stream-engine.js';

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

/**
 * A live message: `epoch\nseq\nid\nevent\ncritical\nts\nawaitedBy\npayload`
 * (the payload last). The event is framed here, once per node (`StoredEvent`):
 * its name is the payload's first field, as in every frame.
 */
export function decodeLive(message: string): { epoch: string; event: StoredEvent } | undefined {
  // Seven fields before the payload, found one after the other (no array
  // of parts per message: this runs once per live event).
  const e1 = message.indexOf('\n');
  const e2 = e1 < 0 ? -1 : message.indexOf('\n', e1 + 1);
  const e3 = e2 < 0 ? -1 : message.indexOf('\n', e2 + 1);
  const e4 = e3 < 0 ? -1 : message.indexOf('\n', e3 + 1);
  const e5 = e4 < 0 ? -1 : message.indexOf('\n', e4 + 1);
  const e6 = e5 < 0 ? -1 : message.indexOf('\n', e5 + 1);
  const e7 = e6 < 0 ? -1 : message.indexOf('\n', e6 + 1);
  if (e7 < 0) return undefined;
  const seq = Number.parseInt(message.slice(e1 + 1, e2), 10);
  const ts = Number(message.slice(e5 + 1, e6));
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(ts)) return undefined;
  const awaitedBy = message.slice(e6 + 1, e7);
  const event = StoredEvent.fromPayload(
    seq,
    message.slice(e2 + 1, e3),
    ts,
    message.slice(e4 + 1, e5) === '1',
    message.slice(e7 + 1),
    awaitedBy === '' ? undefined : awaitedBy,
  );
  return { epoch: message.slice(0, e1), event };
}

/** A pub/sub message as a JSON object, or undefined. */
function parseObject(message: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(message);
    return typeof value === 'object' && value !== null
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

export function decodeReport(message: string): DeliveryReport | undefined {
  const r = parseObject(message);
  if (r === undefined) return undefined;
  if (
    typeof r.userId !== 'string' ||
    typeof r.id !== 'string' ||
    typeof r.seq !== 'number' ||
    typeof r.epoch !== 'string' ||
    typeof r.awaitedBy !== 'string' ||
    (r.kind !== 'written' && r.kind !== 'acked') ||
    typeof r.connections !== 'number'
  ) {
    return undefined;
  }
  return {
    userId: r.userId,
    id: r.id,
    seq: r.seq,
    epoch: r.epoch,
    awaitedBy: r.awaitedBy,
    kind: r.kind,
    connections: r.connections,
  };
}

export function decodeControl(message: string): ControlMessage | undefined {
  const m = parseObject(message);
  if (m === undefined) return undefined;
  // A close code a server may send: 1000, 1001, 1012, or an application code (ws throws on others).
  const code = m.code;
  const closeCode =
    typeof code === 'number' &&
    ([1000, 1001, 1012].includes(code) || (code >= 3000 && code <= 4999));
  if (
    m.kind !== 'disconnect' ||
    !isValidUserId(m.userId) ||
    !closeCode ||
    !Number.isInteger(code)
  ) {
    return undefined;
  }
  return { kind: 'disconnect', userId: m.userId as string, code: m.code as number };
}

/** A directory value, `node\ndeadline\nsnapshot`, if its deadline is after `now`. */
export function decodeRecord(
  connectionId: string,
  value: string,
  now: number,
): ConnectionRecord | undefined {
  const first = value.indexOf('\n');
  const second = value.indexOf('\n', first + 1);
  if (first < 0 || second < 0) return undefined;
  if (Number(value.slice(first + 1, second)) <= now) return undefined;
  return { node: value.slice(0, first), connectionId, snapshot: value.slice(second + 1) };
}

/** The loads hash (`node -> deadline\ncount`): the figures whose deadline is after `now`. */
export function decodeLoads(all: Record<string, string>, now: number): Map<string, number> {
  const loads = new Map<string, number>();
  for (const [node, value] of Object.entries(all)) {
    const [deadline, count] = value.split('\n').map(Number);
    if (deadline !== undefined && deadline > now && Number.isSafeInteger(count)) {
      loads.set(node, count as number);
    }
  }
  return loads;
}

function isRunGrammarCode(code: unknown): code is RunGrammarCode {
  return RUN_GRAMMAR_CODES.includes(code as RunGrammarCode);
}

/**
 * The publish script's reply (scripts.ts) as an outcome; a strict-mode
 * refusal throws `RunGrammarError`.
 */
export function decodePublishReply(result: unknown, id: string): PublishOutcome {
  if (Array.isArray(result) && result[0] === -1 && typeof result[1] === 'string') {
    // The event's own error (publish-script.ts): the reply error a call of
    // its own would have got, without Redis's "script: <sha>…" suffix.
    const error = new Error(result[1]);
    error.name = 'ReplyError';
    throw error;
  }
  if (
    !Array.isArray(result) ||
    typeof result[0] !== 'number' ||
    typeof result[1] !== 'string' ||
    typeof result[3] !== 'number'
  ) {
    throw new Error('RedisBroker: malformed publish reply');
  }
  const [seq, epoch, kind, connections, open, code, message] = result as unknown[];
  if (kind === 2) {
    if (!isRunGrammarCode(open) || typeof code !== 'string') {
      throw new Error('RedisBroker: malformed publish reply');
    }
    // A refusal is {0, epoch, 2, 0, code, message}.
    throw new RunGrammarError(open, code);
  }
  const outcome: PublishOutcome = {
    seq: seq as number,
    epoch: epoch as string,
    id,
    duplicate: kind === 1,
    connections: connections as number,
  };
  if (typeof open === 'string' && open !== '') outcome.openToolCalls = decodeIds(open);
  if (isRunGrammarCode(code) && typeof message === 'string') {
    outcome.runGrammarViolation = { code, message };
  }
  return outcome;
}

function decodeIds(json: string): string[] {
  const ids: unknown = JSON.parse(json);
  if (!isStringArray(ids)) throw new Error('RedisBroker: malformed open tool calls');
  return ids;
}

/**
 * A run log record after its head: the script writes `{"seq":…,"epoch":"…","ts":…`
 * and appends this. Names and ids need no escaping (validation patterns).
 */
export function runLogRecordTail(event: string, run: EncodedRunEvent): string {
  const thread = run.threadId === undefined ? '' : `,"threadId":"${run.threadId}"`;
  return `,"event":"${event}"${thread},"data":${run.dataJson}}`;
}
