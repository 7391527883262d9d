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
export {
  handshakeServerOptions,
  hardenServer,
  type HandshakeServerOptions,
} from './gateway/harden-server.js';
export { GatewayError } from './errors.js';
export { OptionError } from './options/validators.js';
export { MemoryBroker, type MemoryBrokerOptions } from './broker/memory-broker.js';
export {
  BrokerUnavailableError,
  type Broker,
  type BrokerHandlers,
  type StreamEvent,
} from './broker/broker.js';
export * from './auth/index.js';
export { GatewayMetrics } from './observability/metrics.js';
export { createLogger } from './observability/logger.js';
export { Supervisor, type TaskDefinition, type TaskSnapshot } from './tasks/supervisor.js';
export { agentRun, type AgentRun } from './gateway/agent-run.js';
export * from './compat/index.js';
export * from './protocol/index.js';
