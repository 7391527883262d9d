/**
 * The cluster bus seam: what goes from one node to the others, stored
 * nowhere. One of the three parts of a `Broker` (with `stream-engine.ts` and
 * `presence-store.ts`). A node cut off at the moment of a send never sees it.
 */

/** A node telling the publisher's node that an awaited event reached connections. */
export interface DeliveryReport {
  userId: string;
  /** The event's id: waiters are keyed by it, since they exist before the seq does. */
  id: string;
  seq: number;
  epoch: string;
  /** The node that waits (`StreamEvent.awaitedBy`). */
  awaitedBy: string;
  /** `written`: sent to `connections` sockets; `acked`: acked by `connections` sockets. */
  kind: 'written' | 'acked';
  connections: number;
}

/** An operator command for every node: close the user's connections there with `code`. */
export interface ControlMessage {
  kind: 'disconnect';
  userId: string;
  code: number;
}

/** Where the bus hands what reaches this node. */
export interface BusHandlers {
  /** A broadcast frame (already serialized) for every open connection of this node. */
  onBroadcast(frame: string): void;
  /** A delivery report addressed to this node. */
  onDelivery(report: DeliveryReport): void;
  /** An operator command sent with `control` by any node, this one included. */
  onControl(message: ControlMessage): void;
}

export interface ClusterBus {
  /** Sends a serialized broadcast frame to every node (this one included). */
  broadcast(frame: string): Promise<void>;
  /** Delivers `message` to `onControl` on every node, this one included. */
  control(message: ControlMessage): Promise<void>;
  /** Hands `report` to `onDelivery` of the node it names (`awaitedBy`) only. */
  reportDelivery(report: DeliveryReport): Promise<void>;
}
