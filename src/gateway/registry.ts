/**
 * The connection registry: user → that user's connections on this node, with
 * the counts the limits are checked against.
 *
 * A handshake first takes a `Reservation` (a slot for the user, the IP and
 * the node) synchronously, before the upgrade: so two handshakes running at
 * once cannot both take the last slot. The slot becomes a connection on
 * `attach`, or is given back by `release`. Entries of users with neither
 * connections nor reservations are removed, so the registry holds exactly
 * what is open or opening, within the node-wide connection limit.
 */

export interface RegisteredConnection {
  readonly id: string;
  readonly userId: string;
  readonly ip: string;
  readonly connectedAt: number;
}

interface UserEntry<C> {
  /**
   * The user's registered connections, oldest first. An array, not a map: a
   * user has a few connections, and a map per user was about 250 bytes of
   * every idle connection's heap. Replaced on every change, never changed in
   * place, so a fan-out iterating it is never disturbed by a close.
   */
  connections: readonly C[];
  reserved: number;
}

export interface Reservation {
  readonly userId: string;
  readonly ip: string;
  settled: boolean;
}

export type ReserveRefusal = 'user_limit' | 'ip_limit' | 'node_limit';

export interface ReserveLimits {
  maxConnectionsPerUser: number;
  maxConnectionsPerIp: number;
  maxConnections: number;
  /** When the user is at its limit: refuse, or admit and let the caller evict the oldest. */
  evictOldest: boolean;
}

/** The list of a user without connections: shared. */
const NONE: readonly never[] = Object.freeze([]);

export class ConnectionRegistry<C extends RegisteredConnection> {
  private readonly users = new Map<string, UserEntry<C>>();
  private readonly perIp = new Map<string, number>();
  private total = 0;
  private open = 0;
  private activeUsers = 0;

  /** Takes a slot, or says which limit refused it. */
  reserve(userId: string, ip: string, limits: ReserveLimits): Reservation | ReserveRefusal {
    if (this.total >= limits.maxConnections) return 'node_limit';
    if ((this.perIp.get(ip) ?? 0) >= limits.maxConnectionsPerIp) return 'ip_limit';
    const entry = this.users.get(userId);
    const used = entry ? entry.connections.length + entry.reserved : 0;
    if (used >= limits.maxConnectionsPerUser && !limits.evictOldest) return 'user_limit';
    const target: UserEntry<C> = entry ?? { connections: NONE as readonly C[], reserved: 0 };
    if (!entry) this.users.set(userId, target);
    target.reserved++;
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
    this.total++;
    return { userId, ip, settled: false };
  }

  /** Turns a reservation into a registered connection. */
  attach(reservation: Reservation, connection: C): void {
    if (reservation.settled) throw new Error('reservation already settled');
    reservation.settled = true;
    const entry = this.users.get(reservation.userId);
    if (!entry) throw new Error('reservation without a user entry');
    entry.reserved--;
    entry.connections = [...entry.connections, connection];
    if (entry.connections.length === 1) this.activeUsers++;
    this.open++;
  }

  /** Gives a slot back when the upgrade never happened. */
  release(reservation: Reservation): void {
    if (reservation.settled) return;
    reservation.settled = true;
    const entry = this.users.get(reservation.userId);
    if (entry) {
      entry.reserved--;
      this.dropIfEmpty(reservation.userId, entry);
    }
    this.decrementIp(reservation.ip);
    this.total--;
  }

  /** Removes a connection; returns how many connections of its user remain on this node. */
  remove(connection: C): number {
    const entry = this.users.get(connection.userId);
    if (!entry || !entry.connections.includes(connection)) return entry?.connections.length ?? 0;
    const rest = entry.connections.filter((other) => other !== connection);
    entry.connections = rest.length === 0 ? (NONE as readonly C[]) : rest;
    this.open--;
    this.total--;
    this.decrementIp(connection.ip);
    const remaining = entry.connections.length;
    if (remaining === 0) this.activeUsers--;
    this.dropIfEmpty(connection.userId, entry);
    return remaining;
  }

  /** The user's connections as they are now: a change of the registry makes a new list. */
  connectionsOf(userId: string): readonly C[] {
    return this.users.get(userId)?.connections ?? NONE;
  }

  countOf(userId: string): number {
    return this.users.get(userId)?.connections.length ?? 0;
  }

  /** Users with at least one registered connection. */
  *userIds(): IterableIterator<string> {
    for (const [userId, entry] of this.users) if (entry.connections.length > 0) yield userId;
  }

  /** Every registered connection. */
  *all(): IterableIterator<C> {
    for (const entry of this.users.values()) yield* entry.connections;
  }

  /**
   * Calls `visit` with every registered connection: what `all` yields, without
   * a generator step per connection (a broadcast visits every one).
   */
  forEach(visit: (connection: C) => void): void {
    for (const entry of this.users.values()) {
      const { connections } = entry;
      for (let i = 0; i < connections.length; i++) visit(connections[i] as C);
    }
  }

  /** Registered (open) connections. */
  get connectionCount(): number {
    return this.open;
  }

  /** Users with at least one registered connection. */
  get userCount(): number {
    return this.activeUsers;
  }

  /** Registered plus reserved: what the node-wide limit counts. */
  get slotCount(): number {
    return this.total;
  }

  /** Distinct keys held (users and IPs), to prove nothing leaks. */
  get entryCount(): { users: number; ips: number } {
    return { users: this.users.size, ips: this.perIp.size };
  }

  private dropIfEmpty(userId: string, entry: UserEntry<C>): void {
    if (entry.connections.length === 0 && entry.reserved === 0) this.users.delete(userId);
  }

  private decrementIp(ip: string): void {
    const n = (this.perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(ip);
    else this.perIp.set(ip, n);
  }
}
