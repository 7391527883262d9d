/**
 * Broker handlers that record everything a broker delivers, for tests to wait
 * on and assert against. A test helper: it grows with what the test sends.
 */
import type {
  BrokerHandlers,
  ControlMessage,
  DeliveryReport,
  StreamEvent,
} from '../../src/broker/broker.js';

export interface RecordedEvent {
  epoch: string;
  event: StreamEvent;
}

export class RecordingHandlers implements BrokerHandlers {
  readonly events = new Map<string, RecordedEvent[]>();
  readonly broadcasts: string[] = [];
  readonly resyncs: string[] = [];
  readonly deliveries: DeliveryReport[] = [];
  readonly healthChanges: { healthy: boolean; reason?: string }[] = [];
  readonly controls: ControlMessage[] = [];

  onEvent(userId: string, epoch: string, event: StreamEvent): void {
    let list = this.events.get(userId);
    if (!list) this.events.set(userId, (list = []));
    list.push({ epoch, event });
  }

  onBroadcast(frame: string): void {
    this.broadcasts.push(frame);
  }

  onResync(userId: string): void {
    this.resyncs.push(userId);
  }

  onDelivery(report: DeliveryReport): void {
    this.deliveries.push(report);
  }

  onControl(message: ControlMessage): void {
    this.controls.push(message);
  }

  onHealthChange(healthy: boolean, reason?: string): void {
    this.healthChanges.push(reason === undefined ? { healthy } : { healthy, reason });
  }

  /** The events received for `userId`, in arrival order. */
  of(userId: string): RecordedEvent[] {
    return this.events.get(userId) ?? [];
  }

  /** The seqs received for `userId`, in arrival order. */
  seqsOf(userId: string): number[] {
    return this.of(userId).map((r) => r.event.seq);
  }
}
