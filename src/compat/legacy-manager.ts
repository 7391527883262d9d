/**
 * The API of the connection manager agentsocket replaces (`send_to_user`,
 * `broadcast`, `add_connection`, `remove_connection`, …), as a thin layer over
 * a `GatewayNode`: every call validates its arguments, maps them onto the new
 * API and maps the answer back to what the old call returned. Nothing here
 * keeps state of its own; delivery, ordering, history and limits are the
 * gateway's. `docs/compat.md` lists every old name with its new equivalent.
 */
import type { WebSocket } from 'ws';
import type { ReadCursor } from '../broker/broker.js';
import { GatewayError } from '../errors.js';
import { MAX_WAIT_MS, type GatewayNode } from '../gateway/gateway.js';
import type { ConnectionSnapshot, GatewayStats } from '../gateway/gateway-types.js';
import type { EventInput } from '../protocol/event-input.js';
import type { JsonValue } from '../protocol/frames.js';

/**
 * A message as the old manager took it. `type` becomes the event name;
 * `run_id`/`runId` and `thread_id`/`threadId` are accepted in either spelling
 * (both at once must agree). No other field is accepted.
 */
export interface LegacyMessage {
  type: string;
  data?: JsonValue;
  run_id?: string;
  runId?: string;
  thread_id?: string;
  threadId?: string;
  /** Default: the event's own default (PROTOCOL.md section 4); other events false. */
  critical?: boolean;
}

/** What the embedder knows about a socket it accepted and authenticated itself. */
export interface LegacyConnectionMeta {
  /** Client address, for limits and diagnostics. Default `adopted`. */
  ip?: string;
  /** Shown in connection snapshots; cut to 256 characters. */
  userAgent?: string;
  /** Resume after this seq of stream `epoch` (both or neither). Default: no cursor. */
  lastSeq?: number;
  epoch?: string;
  /** When the user's credential expires (ms since the epoch): closed with 4401 then. Default never. */
  expiresAt?: number | null;
}

/** Default time `sendToUserWithWait` waits for delivery. */
export const LEGACY_DEFAULT_WAIT_MS = 5000;

const MESSAGE_FIELDS = new Set([
  'type',
  'data',
  'run_id',
  'runId',
  'thread_id',
  'threadId',
  'critical',
]);
const BROADCAST_FIELDS = new Set(['type', 'data']);
const MAX_META_TEXT = 256;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function badRequest(field: string, message: string): GatewayError {
  return new GatewayError('bad_request', message, field);
}

/**
 * The same error with the new API's field names replaced by the names the
 * caller used (`event` → `type`, `runId` → `run_id`, …), in `field` and in
 * the message, so the error names what the legacy caller actually sent.
 */
function inLegacyTerms(error: unknown, names: Readonly<Record<string, string>>): unknown {
  if (!(error instanceof GatewayError)) return error;
  let { message } = error;
  let field = error.field;
  for (const [from, to] of Object.entries(names)) {
    if (from === to) continue;
    const word = new RegExp(`\\b${from}\\b`, 'g');
    message = message.replace(word, to);
    if (field !== undefined) field = field.replace(word, to);
  }
  return new GatewayError(error.code, message, field, error.retryAfter);
}

/** Picks one of two spellings of a field; both given must agree. */
function eitherSpelling(
  message: Record<string, unknown>,
  snake: string,
  camel: string,
): { value: unknown; name: string } {
  const hasSnake = message[snake] !== undefined;
  const hasCamel = message[camel] !== undefined;
  if (hasSnake && hasCamel && message[snake] !== message[camel]) {
    throw badRequest(snake, `${snake} and ${camel} are both set and disagree`);
  }
  // Errors speak the old API's spelling unless the caller used the new one.
  return hasCamel && !hasSnake
    ? { value: message[camel], name: camel }
    : { value: message[snake], name: snake };
}

function checkTimeout(timeoutMs: unknown): number {
  if (typeof timeoutMs !== 'number' || !Number.isSafeInteger(timeoutMs)) {
    throw badRequest('timeoutMs', `timeoutMs must be an integer from 0 to ${MAX_WAIT_MS}`);
  }
  if (timeoutMs < 0 || timeoutMs > MAX_WAIT_MS) {
    throw badRequest('timeoutMs', `timeoutMs must be an integer from 0 to ${MAX_WAIT_MS}`);
  }
  return timeoutMs;
}

function checkUserId(userId: unknown): string {
  if (typeof userId !== 'string') throw badRequest('userId', 'userId must be a string');
  return userId;
}

/**
 * The old connection manager's API over a gateway node.
 *
 * @example
 * const manager = new LegacyConnectionManager(gateway);
 * await manager.send_to_user('alice', { type: 'agent_thinking', run_id: 'r1', data: { text: '…' } });
 */
export class LegacyConnectionManager {
  constructor(readonly gateway: GatewayNode) {}

  /**
   * Publishes `message` to the user. Resolves `true` when the event was
   * written to at least one open connection of the user on this node at once,
   * `false` when none was open. `false` does not mean lost: the event has its
   * seq and is delivered from history when the user connects (the old manager
   * dropped it). Rejects with a `GatewayError` naming the field at fault.
   */
  async sendToUser(userId: string, message: LegacyMessage): Promise<boolean> {
    const { input, names } = this.toEventInput(message);
    try {
      const result = await this.gateway.publish(checkUserId(userId), input);
      return result.delivered > 0;
    } catch (error) {
      throw inLegacyTerms(error, names);
    }
  }

  /**
   * Publishes `message` and waits up to `timeoutMs` (default 5000, at most
   * 30 000) until a connection of the user received it (acked it, if
   * critical). Resolves `true` once delivered, `false` when the time is up.
   * The event is stored before the wait starts, so a user who connects during
   * the wait gets it in the replay: there is no race with the connection and
   * the event is never sent twice.
   */
  async sendToUserWithWait(
    userId: string,
    message: LegacyMessage,
    timeoutMs: number = LEGACY_DEFAULT_WAIT_MS,
  ): Promise<boolean> {
    const waitMs = checkTimeout(timeoutMs);
    const { input, names } = this.toEventInput(message);
    try {
      const result = await this.gateway.publish(checkUserId(userId), input, { waitMs });
      return result.delivered > 0;
    } catch (error) {
      throw inLegacyTerms(error, { ...names, wait: 'timeoutMs' });
    }
  }

  /**
   * Sends `{type, data?}` to every open connection: resolves to how many
   * connections of this node it was written to. Broadcasts have no seq and
   * are not replayed, so `run_id`, `thread_id` and `critical` are refused.
   */
  async broadcast(message: Pick<LegacyMessage, 'type' | 'data'>): Promise<number> {
    if (!isRecord(message)) throw badRequest('message', 'message must be an object');
    for (const key of Object.keys(message)) {
      if (!BROADCAST_FIELDS.has(key)) {
        throw badRequest(key, `a broadcast carries only type and data, not "${key.slice(0, 64)}"`);
      }
    }
    try {
      const result = await this.gateway.broadcast(message.type, message.data ?? null);
      return result.connections;
    } catch (error) {
      throw inLegacyTerms(error, { event: 'type' });
    }
  }

  /**
   * Serves a WebSocket the embedder accepted and authenticated itself, as a
   * connection of `userId` (`gateway.adopt`): the welcome, replay, live events,
   * acks and limits of protocol v1 apply from here on. Resolves to the
   * connection id. Rejects when the socket is not open (`ws`), the user id or
   * meta is malformed, or the user's connection limit is reached (429).
   */
  async addConnection(
    userId: string,
    ws: WebSocket,
    meta: LegacyConnectionMeta = {},
  ): Promise<string> {
    checkUserId(userId);
    if (!isRecord(ws) || typeof ws.readyState !== 'number' || typeof ws.send !== 'function') {
      throw badRequest('ws', 'ws must be a WebSocket of the ws package');
    }
    if (!isRecord(meta)) throw badRequest('meta', 'meta must be an object');
    const options: { ip?: string; userAgent?: string; cursor?: ReadCursor } = {};
    for (const key of ['ip', 'userAgent'] as const) {
      const value = meta[key];
      if (value === undefined) continue;
      if (typeof value !== 'string' || value.length === 0 || value.length > MAX_META_TEXT) {
        throw badRequest(`meta.${key}`, `meta.${key} must be 1-${MAX_META_TEXT} characters`);
      }
      options[key] = value;
    }
    if (meta.lastSeq !== undefined || meta.epoch !== undefined) {
      const { lastSeq, epoch } = meta;
      if (typeof lastSeq !== 'number' || !Number.isSafeInteger(lastSeq) || lastSeq < 0) {
        throw badRequest('meta.lastSeq', 'meta.lastSeq must be a non-negative integer');
      }
      if (typeof epoch !== 'string' || epoch.length === 0 || epoch.length > MAX_META_TEXT) {
        throw badRequest('meta.epoch', 'meta.epoch must be set with meta.lastSeq');
      }
      options.cursor = { kind: 'position', seq: lastSeq, epoch };
    }
    const expiresAt = meta.expiresAt ?? null;
    if (expiresAt !== null && (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt))) {
      throw badRequest('meta.expiresAt', 'meta.expiresAt must be ms since the epoch, or null');
    }
    const snapshot = await this.gateway.adopt(ws, { userId, expiresAt }, options);
    return snapshot.connectionId;
  }

  /**
   * Closes one connection of the user with 1000. Resolves `true` when it was
   * open and is now closing, `false` when the user has no such connection on
   * this node (unknown id, another user's id, already closed).
   */
  removeConnection(userId: string, connectionId: string): boolean {
    checkUserId(userId);
    if (typeof connectionId !== 'string') {
      throw badRequest('connectionId', 'connectionId must be a string');
    }
    return this.gateway.closeConnection(userId, connectionId);
  }

  /** The user's connections on this node, as operator snapshots (state, address, acks, buffer). */
  getUserConnections(userId: string): ConnectionSnapshot[] {
    return this.gateway.connections(checkUserId(userId));
  }

  /** The gateway's statistics (connections, users, event counters, errors by kind). */
  getStats(): GatewayStats {
    return this.gateway.stats();
  }

  /**
   * Resolves `true` as soon as the user has an open connection on this node
   * (at once if it has one), `false` after `timeoutMs` (0 to 30 000).
   */
  async waitForConnection(userId: string, timeoutMs: number): Promise<boolean> {
    const checked = checkTimeout(timeoutMs);
    return this.gateway.waitForConnection(checkUserId(userId), checked);
  }

  // ---- snake_case names of the old API ------------------------------------

  /** Same as `sendToUser`. */
  send_to_user(userId: string, message: LegacyMessage): Promise<boolean> {
    return this.sendToUser(userId, message);
  }

  /** Same as `sendToUserWithWait`. */
  send_to_user_with_wait(
    userId: string,
    message: LegacyMessage,
    timeoutMs: number = LEGACY_DEFAULT_WAIT_MS,
  ): Promise<boolean> {
    return this.sendToUserWithWait(userId, message, timeoutMs);
  }

  /** Same as `addConnection`. */
  add_connection(userId: string, ws: WebSocket, meta?: LegacyConnectionMeta): Promise<string> {
    return this.addConnection(userId, ws, meta);
  }

  /** Same as `removeConnection`. */
  remove_connection(userId: string, connectionId: string): boolean {
    return this.removeConnection(userId, connectionId);
  }

  /** Same as `getUserConnections`. */
  get_user_connections(userId: string): ConnectionSnapshot[] {
    return this.getUserConnections(userId);
  }

  /** Same as `getStats`. */
  get_stats(): GatewayStats {
    return this.getStats();
  }

  /** Same as `waitForConnection`. */
  wait_for_connection(userId: string, timeoutMs: number): Promise<boolean> {
    return this.waitForConnection(userId, timeoutMs);
  }

  /** Maps a legacy message onto an `EventInput`, with the names the caller used. */
  private toEventInput(message: unknown): {
    input: EventInput;
    names: Record<string, string>;
  } {
    if (!isRecord(message)) throw badRequest('message', 'message must be an object');
    for (const key of Object.keys(message)) {
      if (!MESSAGE_FIELDS.has(key)) {
        throw badRequest(key, `unknown message field "${key.slice(0, 64)}"`);
      }
    }
    const run = eitherSpelling(message, 'run_id', 'runId');
    const thread = eitherSpelling(message, 'thread_id', 'threadId');
    // Types are checked by the gateway's validation; this only renames fields.
    const input = {
      event: message.type,
      ...(message.data !== undefined ? { data: message.data } : {}),
      ...(run.value !== undefined ? { runId: run.value } : {}),
      ...(thread.value !== undefined ? { threadId: thread.value } : {}),
      ...(message.critical !== undefined ? { critical: message.critical } : {}),
    } as EventInput;
    return { input, names: { event: 'type', runId: run.name, threadId: thread.name } };
  }
}
