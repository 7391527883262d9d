/**
 * The cluster bus on Redis pub/sub: a broadcast channel and a control channel
 * every node follows, and one channel per node for the delivery reports
 * addressed to it. Nothing is stored: a node cut off at the moment of a
 * PUBLISH never sees the message.
 */
import type { Logger } from 'pino';
import type { BusHandlers, ClusterBus, ControlMessage, DeliveryReport } from '../cluster-bus.js';
import type { RedisKeys } from './keys.js';
import type { EngineLinks } from './engine-links.js';
import { errorMessage, toBrokerError } from './links.js';
import { NODE_ID_PATTERN } from './stream.js';
import { decodeControl, decodeReport } from './wire.js';

export class RedisBus implements ClusterBus {
  private handlers: BusHandlers | undefined;

  constructor(
    private readonly links: EngineLinks,
    private readonly keys: RedisKeys,
    private readonly nodeId: string,
    private readonly logger: Logger | undefined,
  ) {}

  attach(handlers: BusHandlers): void {
    this.handlers = handlers;
  }

  async broadcast(frame: string): Promise<void> {
    await this.send(this.keys.broadcast, frame);
  }

  /** PUBLISHes `message` on the control channel, which every node (this one included) follows. */
  async control(message: ControlMessage): Promise<void> {
    await this.send(this.keys.control, JSON.stringify(message));
  }

  async reportDelivery(report: DeliveryReport): Promise<void> {
    if (!NODE_ID_PATTERN.test(report.awaitedBy)) return;
    await this.send(this.keys.nodeChannel(report.awaitedBy), JSON.stringify(report));
  }

  /** The shared channels the subscriber link must hold. */
  channels(): string[] {
    return [this.keys.broadcast, this.keys.control, this.keys.nodeChannel(this.nodeId)];
  }

  /** A message on a bus channel; false when `channel` is not one. */
  onMessage(channel: string, message: string): boolean {
    const handlers = this.handlers;
    if (channel === this.keys.broadcast) {
      this.deliver(() => handlers?.onBroadcast(message));
      return true;
    }
    if (channel === this.keys.control) {
      const command = decodeControl(message);
      if (command !== undefined) this.deliver(() => handlers?.onControl(command));
      return true;
    }
    if (channel === this.keys.nodeChannel(this.nodeId)) {
      const report = decodeReport(message);
      if (report !== undefined) this.deliver(() => handlers?.onDelivery(report));
      return true;
    }
    return false;
  }

  private async send(channel: string, message: string): Promise<void> {
    const command = this.links.command;
    try {
      await command.publish(channel, message);
    } catch (error) {
      throw toBrokerError(error);
    }
  }

  /** Runs a handler; a throwing handler is logged, never breaks the engine. */
  private deliver(call: () => void): void {
    try {
      call();
    } catch (error) {
      this.logger?.error({ err: errorMessage(error) }, 'redis broker: a handler threw');
    }
  }
}
