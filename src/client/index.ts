/**
 * `agentsocket/client`: the client SDK for browsers and Node 20. It imports
 * only `agentsocket/protocol` and the pure run modules (src/runs), so it
 * builds with no Node types.
 */
export { AgentSocketClient, isAgentEvent } from './agent-socket-client.js';
export type { FetchRunsOptions, WaitForEventOptions } from './agent-socket-client.js';
export { ClientStates } from './client-types.js';
export type {
  AgentEvent,
  AgentEventFrame,
  AgentSocketClientOptions,
  AuthMode,
  ClientError,
  ClientErrorKind,
  ClientEventMap,
  ClientState,
  ClosedInfo,
  GapInfo,
  StateChange,
  TokenSource,
  UrlSource,
} from './client-types.js';
export { ClientClosedError, RunsRequestError, WaitTimeoutError } from './client-errors.js';
export { DEFAULT_RUNS_LIMIT, RunTracker } from './run-tracker.js';
export type { RunTrackerHooks } from './run-tracker.js';
export {
  DEFAULT_FETCH_RUNS,
  MAX_FETCH_RUNS,
  httpBaseFromSocketUrl,
  requestRun,
  requestRuns,
} from './runs-api.js';
export type { FetchLike, RunsRequest } from './runs-api.js';
export { foldRunFrame } from '../runs/run-snapshot.js';
export type {
  ReasoningPart,
  RunCompletion,
  RunPart,
  RunSnapshot,
  RunStatus,
  TextPart,
  ToolPart,
} from '../runs/run-types.js';
export type {
  EventDataOf,
  EventMap,
  KnownEventName,
  NoCustomEvents,
  TypedEventFrame,
  TypedEventInput,
} from '../protocol/typed-events.js';
export { DEFAULT_BACKOFF_BASE_MS, DEFAULT_BACKOFF_CAP_MS, exponentialBackoff } from './backoff.js';
export type { BackoffPolicy, ExponentialBackoffOptions } from './backoff.js';
export { ReconnectScheduler } from './reconnect-scheduler.js';
export { SeqTracker } from './seq-tracker.js';
export type { StreamCursor, WelcomeOutcome } from './seq-tracker.js';
export { AckScheduler, DEFAULT_ACK_DELAY_MS, DEFAULT_ACK_MAX_BATCH } from './ack-scheduler.js';
export type { AckOptions } from './ack-scheduler.js';
export { DEFAULT_CURSOR_STORAGE_KEY, loadCursor, saveCursor } from './cursor-storage.js';
export type { StorageLike } from './cursor-storage.js';
export { jwtExpiresAt } from './jwt-expiry.js';
export { followRun } from './run-follower.js';
export type { FollowRunOptions, RunSource } from './run-follower.js';
export { TypedEmitter } from './typed-emitter.js';
export type { Listener } from './typed-emitter.js';
export { resolveWebSocket } from './websocket-like.js';
export type {
  CloseLike,
  MessageLike,
  WebSocketConstructorLike,
  WebSocketInitLike,
  WebSocketLike,
} from './websocket-like.js';
export type { ReconnectAdvice } from '../protocol/close-codes.js';
