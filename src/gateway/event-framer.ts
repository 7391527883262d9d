/**
 * The one place an event becomes bytes on the node: the frame text
 * (`protocol/event-frame.ts`) and its WebSocket frame (`wire-frame.ts`),
 * built once per event and shared by every connection of a fan-out. It keeps
 * the last event framed: a fan-out, and a replay's events that follow it,
 * ask for the same event many times in a row.
 */
import { encodeEventFrame } from '../protocol/event-frame.js';
import type { StreamEvent } from '../broker/stream-engine.js';
import { encodeTextFrame } from './wire-frame.js';

export class EventFramer {
  private last: StreamEvent | null = null;
  private lastText = '';
  private lastWire: Buffer = Buffer.alloc(0);

  /** The event's complete WebSocket frame. */
  wire(event: StreamEvent): Buffer {
    if (event !== this.last) this.frame(event);
    return this.lastWire;
  }

  /** The event's frame text (for sockets written through ws: adopted ones). */
  text(event: StreamEvent): string {
    if (event !== this.last) this.frame(event);
    return this.lastText;
  }

  private frame(event: StreamEvent): void {
    this.lastText = encodeEventFrame(event);
    this.lastWire = encodeTextFrame(this.lastText);
    this.last = event;
  }
}
