/** Compatibility with the connection manager agentsocket replaces (docs/compat.md). */
export {
  LEGACY_DEFAULT_WAIT_MS,
  LegacyConnectionManager,
  type LegacyConnectionMeta,
  type LegacyMessage,
} from './legacy-manager.js';
