/**
 * `agentsocket`: the server side. Create a gateway, attach it to an HTTP
 * server, publish agent events to users.
 */
export {
  createGateway,
  GatewayNode,
  MAX_WAIT_MS,
  type CreateGatewayOptions,
} from './gateway/gateway.js';
export type * from './gateway/gateway-types.js';
export { DEFAULT_LIMITS, type GatewayLimits, type GatewayOptions } from './gateway/options.js';
export { DEFAULT_AGUI_STREAM_OPTIONS, type AguiStreamOptions } from './gateway/agui-options.js';
export type { AguiRunStream, AguiStreamRequest, SseSink } from './gateway/agui-run-stream.js';
export { STREAM_INTERRUPTED_CODE } from './agui/agui-interrupt.js';
export {
  handshakeServerOptions,
  hardenServer,
  type HandshakeServerOptions,
} from './gateway/harden-server.js';
export {
  createHttpApi,
  type ApiKeyVerifier,
  type HttpApiHandler,
  type HttpApiOptions,
} from './http/http-api.js';
export { GatewayError, RunGrammarError } from './errors.js';
export { OptionError } from './options/validators.js';
export {
  MemoryBroker,
  type MemoryBrokerOptions,
  type MemoryBrokerStats,
} from './broker/memory-broker.js';
export { InProcessCluster, type InProcessClusterOptions } from './broker/in-process-cluster.js';
export { HISTORY_DEFAULTS, RUN_DEFAULTS } from './broker/stream-defaults.js';
export {
  BrokerUnavailableError,
  type Broker,
  type BrokerHandlers,
  type BrokerHealth,
  type BusHandlers,
  type ClusterBus,
  type ConnectionRecord,
  type ControlMessage,
  type DeliveryReport,
  type EncodedEvent,
  type HistoryRead,
  type PresenceStore,
  type PublishOptions,
  type PublishOutcome,
  type ReadCursor,
  type RunGrammarMode,
  type RunStore,
  type StreamEngine,
  type StreamEvent,
  type StreamHandlers,
  type StreamPosition,
} from './broker/broker.js';
export * from './auth/index.js';
export { GatewayMetrics } from './observability/metrics.js';
export { createLogger } from './observability/logger.js';
export { Supervisor, type TaskDefinition, type TaskSnapshot } from './tasks/supervisor.js';
export { agentRun, type AgentRun } from './gateway/agent-run.js';
export * from './compat/index.js';
export * from './protocol/index.js';
