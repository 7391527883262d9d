/**
 * `agentsocket/protocol`: the wire contract of protocol v1, shared by the
 * gateway and the client SDK. Nothing here imports from Node.
 */
export * from './frames.js';
export * from './codec.js';
export * from './close-codes.js';
export * from './error-codes.js';
export * from './agent-events.js';
export * from './event-input.js';
export * from './event-frame.js';
export * from './user-id.js';
export * from './merged-frame.js';
export * from './typed-events.js';
