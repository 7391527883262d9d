/**
 * What a connection works with on its node (`NodeConnections` provides it):
 * injected, so a connection holds no globals and tests can swap the parts.
 */
import type { Logger } from 'pino';
import type { VerifiedUser } from '../auth/authenticator.js';
import type { RunStore } from '../broker/run-store.js';
import type { StreamEngine } from '../broker/stream-engine.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { Connection } from './connection.js';
import type { DeliveryReports } from './delivery-reports.js';
import type { EventFramer } from './event-framer.js';
import type { NodeStats } from './node-stats.js';
import type { ResolvedOptions } from './options.js';
import type { WriteCoalescer } from './write-coalescer.js';

/** The node parts of a connection. */
export interface ConnectionHost {
  readonly options: ResolvedOptions;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  readonly nodeId: string;
  readonly coalescer: WriteCoalescer;
  /** History reads (open, resync). */
  readonly streams: StreamEngine;
  /** Run snapshots (open, with `snapshots=1`). */
  readonly runs: RunStore;
  /** Events as frames, shared by every connection of a fan-out. */
  readonly framer: EventFramer;
  /** Acks and delivery reports of awaited events. */
  readonly reports: DeliveryReports;
  /** The node's counters (`/v1/stats`). */
  readonly stats: NodeStats;
  /** Verifies a `refresh` token; rejects with a `forbidden` `GatewayError` when the user is blocked. */
  verifyRefresh(token: string): Promise<VerifiedUser>;
  /** The socket is gone. */
  closed(connection: Connection, code: number): void;
}
