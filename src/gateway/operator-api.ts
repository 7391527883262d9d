/**
 * The operator side of a node (PROTOCOL.md section 5, the connections
 * endpoints, the legacy manager): list and close a user's connections, here
 * or on every node (through the presence store and the cluster bus), and
 * wait for a user's first open connection.
 */
import type { Logger } from 'pino';
import type { ClusterBus, ControlMessage } from '../broker/cluster-bus.js';
import { GatewayError } from '../errors.js';
import { CloseCode } from '../protocol/close-codes.js';
import { isValidUserId } from '../protocol/user-id.js';
import type { BrokerFailures } from './broker-failures.js';
import type { ClusterDirectory } from './cluster-directory.js';
import type { Connection } from './connection.js';
import type { ConnectionSnapshot } from './gateway-types.js';
import { KeyedWaiters } from './keyed-waiters.js';
import type { ConnectionRegistry } from './registry.js';

/** Waits for a user's first open connection at once. */
const MAX_CONNECTION_WAITERS = 10_000;

function assertUserId(userId: string): void {
  if (!isValidUserId(userId))
    throw new GatewayError('bad_request', 'userId is malformed', 'userId');
}

export class OperatorApi {
  private readonly connectionWaiters = new KeyedWaiters<boolean>(MAX_CONNECTION_WAITERS);

  constructor(
    private readonly registry: ConnectionRegistry<Connection>,
    private readonly directory: ClusterDirectory,
    private readonly bus: ClusterBus,
    private readonly failures: BrokerFailures,
    private readonly logger: Logger,
  ) {}

  /** A connection of the user is open: those waiting for one are answered. */
  opened(userId: string): void {
    this.connectionWaiters.resolve(userId, true);
  }

  /**
   * Resolves true as soon as the user has an open connection on this node
   * (at once if it has one), false after `timeoutMs`.
   */
  waitForConnection(userId: string, timeoutMs: number): Promise<boolean> {
    for (const connection of this.registry.connectionsOf(userId)) {
      if (connection.state === 'open') return Promise.resolve(true);
    }
    return this.connectionWaiters.wait(userId, timeoutMs);
  }

  /** Closes one connection of the user here; false when there is no such open connection. */
  closeConnection(userId: string, connectionId: string, code: number, reason?: string): boolean {
    for (const connection of this.registry.connectionsOf(userId)) {
      if (connection.id !== connectionId) continue;
      if (connection.state === 'closing' || connection.state === 'closed') return false;
      connection.close(code, reason);
      return true;
    }
    return false;
  }

  connections(userId: string): ConnectionSnapshot[] {
    return [...this.registry.connectionsOf(userId)].map((c) => c.snapshot());
  }

  async connectionsEverywhere(userId: string): Promise<ConnectionSnapshot[]> {
    assertUserId(userId);
    let remote: ConnectionSnapshot[];
    try {
      remote = await this.directory.remoteConnections(userId);
    } catch (error) {
      throw this.failures.map('list_connections', error);
    }
    return [...this.connections(userId), ...remote];
  }

  async disconnectUserEverywhere(userId: string, code: number): Promise<number> {
    assertUserId(userId);
    let remote = 0;
    try {
      for (const snapshot of await this.directory.remoteConnections(userId)) {
        if (snapshot.state === 'open' || snapshot.state === 'connecting') remote++;
      }
      // Close here first: the count of this node is exact. The command then
      // reaches every node (this one finds nothing left to close).
      const local = this.disconnectUser(userId, code);
      await this.bus.control({ kind: 'disconnect', userId, code });
      return local + remote;
    } catch (error) {
      throw this.failures.map('control', error);
    }
  }

  /** An operator command from the bus (any node, this one too). */
  onControl(message: ControlMessage): void {
    if (message.kind === 'disconnect') this.disconnectUser(message.userId, message.code);
  }

  disconnectUser(userId: string, code: number = CloseCode.TokenExpired, reason?: string): number {
    let closed = 0;
    for (const connection of [...this.registry.connectionsOf(userId)]) {
      if (connection.state === 'closing' || connection.state === 'closed') continue;
      connection.close(code, reason);
      closed++;
    }
    if (closed > 0) this.logger.info({ userId, closed, code }, 'user disconnected by operator');
    return closed;
  }
}
