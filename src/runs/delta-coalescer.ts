/**
 * Coalescing of deltas in one connection's pending send queue (protocol 1.1):
 * when a connection falls behind, and during replay, adjacent unsent
 * non-critical `agent_thinking`/`agent_text` deltas of one run (and one
 * `messageId`) with consecutive seqs become one frame whose `text` is theirs
 * concatenated, `seqFrom` the first seq and `seq` the last. Nothing is ever
 * dropped and nothing is reordered:
 * - any other item (another run or message, a critical event, another kind of
 *   event, a delta with extra data fields, a broadcast) is a barrier: it is
 *   queued after what is pending and written after it, and a delta after it
 *   never merges with one before it;
 * - a merged text stops growing at `maxMergedBytes` (64 KiB): the next delta
 *   starts a new frame.
 *
 * Items are built once per published event (`pendingItemOf`) and shared by
 * every connection's queue; the queue never changes them. A delta nothing
 * merged with is written as its original frame (encoded once at publish).
 */
import { utf8ByteLength } from '../protocol/event-input.js';
import type { EventFrame } from '../protocol/frames.js';
import { encodeMergedDeltaFrame } from '../protocol/merged-frame.js';

/** Default cap of one merged frame's text: 64 KiB (UTF-8). */
export const DEFAULT_MAX_MERGED_TEXT_BYTES = 64 * 1024;
/** Default bound of a queue's frames (merged groups count once). */
export const DEFAULT_COALESCER_MAX_ITEMS = 10_000;
/** Default bound of a queue's bytes (frames' UTF-8 size, merged texts counted once). */
export const DEFAULT_COALESCER_MAX_BYTES = 4 * 1024 * 1024;

/** A delta that may merge with its neighbours. */
export interface PendingDelta {
  kind: 'delta';
  /** The event's frame as published: written as is when nothing merges with it. */
  frame: string;
  /** UTF-8 size of `frame`. */
  bytes: number;
  seq: number;
  /** When the item already stands for a range (a merged frame read back): its first seq. */
  seqFrom?: number;
  id: string;
  event: 'agent_thinking' | 'agent_text';
  runId: string;
  threadId?: string;
  messageId?: string;
  ts: number;
  text: string;
  /** UTF-8 size of `text`. */
  textBytes: number;
}

/** Anything else: written as is, and a barrier to merging. */
export interface PendingFrame {
  kind: 'frame';
  frame: string;
  bytes: number;
  /** Its seq, when it is an event of the user's stream (a broadcast has none). */
  seq?: number;
}

export type PendingItem = PendingDelta | PendingFrame;

/** An event of the user's stream as the gateway has it when published: an event frame's fields. */
export type StreamEvent = Omit<EventFrame, 'type'>;

/**
 * The delta fields of an event when it may merge (a non-critical
 * `agent_thinking`/`agent_text` of a run whose data holds only `text`, and
 * `messageId` for `agent_text`), else undefined: merging must not drop a field.
 */
function deltaOf(
  event: StreamEvent,
): { event: PendingDelta['event']; text: string; messageId?: string } | undefined {
  const { data } = event;
  if (event.critical || event.runId === undefined) return undefined;
  if (event.event !== 'agent_thinking' && event.event !== 'agent_text') return undefined;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined;
  if (typeof data.text !== 'string') return undefined;
  let fields = 1;
  if (event.event === 'agent_text' && data.messageId !== undefined) {
    if (typeof data.messageId !== 'string') return undefined;
    fields = 2;
  }
  if (Object.keys(data).length !== fields) return undefined;
  return fields === 2
    ? { event: event.event, text: data.text, messageId: data.messageId as string }
    : { event: event.event, text: data.text };
}

/**
 * The queue item of an event and its encoded frame; built once per publish
 * and shared by every connection.
 */
export function pendingItemOf(frame: string, event: StreamEvent): PendingItem {
  const bytes = utf8ByteLength(frame);
  const delta = deltaOf(event);
  if (delta === undefined) return { kind: 'frame', frame, bytes, seq: event.seq };
  const item: PendingDelta = {
    kind: 'delta',
    frame,
    bytes,
    seq: event.seq,
    id: event.id,
    event: delta.event,
    runId: event.runId!,
    ts: event.ts,
    text: delta.text,
    textBytes: utf8ByteLength(delta.text),
  };
  if (event.seqFrom !== undefined) item.seqFrom = event.seqFrom;
  if (event.threadId !== undefined) item.threadId = event.threadId;
  if (delta.messageId !== undefined) item.messageId = delta.messageId;
  return item;
}

/** The queue item of an encoded frame, e.g. an `event` frame read back from history. */
export function pendingItemFromFrame(frame: string): PendingItem {
  const bytes = utf8ByteLength(frame);
  let parsed: unknown;
  try {
    parsed = JSON.parse(frame);
  } catch {
    return { kind: 'frame', frame, bytes };
  }
  const value = parsed as Partial<StreamEvent> & { type?: unknown };
  if (value.type !== 'event' || typeof value.seq !== 'number')
    return { kind: 'frame', frame, bytes };
  const fields = value as StreamEvent;
  return pendingItemOf(frame, {
    ...fields,
    critical: fields.critical !== false,
    data: fields.data ?? null,
  });
}

/** What one `takeAll()` hands to the socket. */
export interface TakenFrames {
  /** The frames to write, in order. */
  frames: string[];
  /** Items taken (each pushed item once, however many seqs it stood for). */
  items: number;
  /** Items that went into another item's frame (for `agentsocket_coalesced_events_total`). */
  coalesced: number;
  /** The highest seq among the frames, if any carries one. */
  lastSeq?: number;
}

export interface DeltaCoalescerOptions {
  /** Cap of one merged text in UTF-8 bytes. Default {@link DEFAULT_MAX_MERGED_TEXT_BYTES}. */
  maxMergedBytes?: number;
  /** Most frames pending. Default {@link DEFAULT_COALESCER_MAX_ITEMS}. */
  maxItems?: number;
  /** Most bytes pending. Default {@link DEFAULT_COALESCER_MAX_BYTES}. */
  maxBytes?: number;
}

/** A run of merged deltas: the first item, and the totals of those after it. */
interface DeltaGroup {
  first: PendingDelta;
  seqFrom: number;
  last: PendingDelta;
  /** The texts after the first one, concatenated (the first is `first.text`). */
  rest: string;
  textBytes: number;
  count: number;
}

type Slot = { kind: 'frame'; item: PendingFrame } | { kind: 'group'; group: DeltaGroup };

/**
 * Not `options/validators.ts`: src/runs/ is in the browser SDK's build and may
 * import only src/runs/ and src/protocol/ (eslint.config.js).
 */
function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`${name} must be a positive integer`);
  return value;
}

/**
 * One connection's pending frames, merging deltas as they are pushed. While
 * anything is pending, every frame of the connection must go through the
 * queue (a frame written around it would overtake what is pending).
 *
 * @example
 * const queue = new DeltaCoalescer();
 * if (!queue.push(item)) closeAsSlowConsumer();
 * socket.once('drain', () => { for (const f of queue.takeAll().frames) socket.send(f); });
 */
export class DeltaCoalescer {
  private slots: Slot[] = [];
  private pendingBytes = 0;
  private pendingItems = 0;
  private readonly maxMergedBytes: number;
  private readonly maxItems: number;
  private readonly maxBytes: number;

  constructor(options: DeltaCoalescerOptions = {}) {
    this.maxMergedBytes = positiveInteger(
      'maxMergedBytes',
      options.maxMergedBytes ?? DEFAULT_MAX_MERGED_TEXT_BYTES,
    );
    this.maxItems = positiveInteger('maxItems', options.maxItems ?? DEFAULT_COALESCER_MAX_ITEMS);
    this.maxBytes = positiveInteger('maxBytes', options.maxBytes ?? DEFAULT_COALESCER_MAX_BYTES);
  }

  /** Frames pending (a merged group counts once). */
  get length(): number {
    return this.slots.length;
  }

  /** Bytes pending: frames' UTF-8 sizes, a delta merged into a group counted by its text. */
  get bytes(): number {
    return this.pendingBytes;
  }

  /**
   * Queues an item, merging it into the pending group before it when it can.
   * Returns false, queueing nothing, when the queue would pass `maxItems` or
   * `maxBytes`: the connection is too far behind (the caller closes it).
   */
  push(item: PendingItem): boolean {
    const tail = this.slots[this.slots.length - 1];
    if (item.kind === 'delta' && tail?.kind === 'group' && this.joins(tail.group, item)) {
      if (this.pendingBytes + item.textBytes > this.maxBytes) return false;
      const group = tail.group;
      group.rest += item.text;
      group.textBytes += item.textBytes;
      group.last = item;
      group.count++;
      this.pendingBytes += item.textBytes;
      this.pendingItems++;
      return true;
    }
    if (this.slots.length >= this.maxItems || this.pendingBytes + item.bytes > this.maxBytes) {
      return false;
    }
    this.slots.push(
      item.kind === 'delta'
        ? {
            kind: 'group',
            group: {
              first: item,
              seqFrom: item.seqFrom ?? item.seq,
              last: item,
              rest: '',
              textBytes: item.textBytes,
              count: 1,
            },
          }
        : { kind: 'frame', item },
    );
    this.pendingBytes += item.bytes;
    this.pendingItems++;
    return true;
  }

  private joins(group: DeltaGroup, item: PendingDelta): boolean {
    const last = group.last;
    return (
      item.event === last.event &&
      item.runId === last.runId &&
      item.messageId === last.messageId &&
      item.threadId === last.threadId &&
      (item.seqFrom ?? item.seq) === last.seq + 1 &&
      group.textBytes + item.textBytes <= this.maxMergedBytes
    );
  }

  /** Everything pending, as frames to write in order; the queue is empty after. */
  takeAll(): TakenFrames {
    const taken: TakenFrames = { frames: [], items: this.pendingItems, coalesced: 0 };
    for (const slot of this.slots) {
      if (slot.kind === 'frame') {
        taken.frames.push(slot.item.frame);
        if (slot.item.seq !== undefined) taken.lastSeq = slot.item.seq;
        continue;
      }
      const { group } = slot;
      taken.frames.push(group.count === 1 ? group.first.frame : encodeGroup(group));
      taken.coalesced += group.count - 1;
      taken.lastSeq = group.last.seq;
    }
    this.slots = [];
    this.pendingBytes = 0;
    this.pendingItems = 0;
    return taken;
  }
}

function encodeGroup(group: DeltaGroup): string {
  const { first, last } = group;
  return encodeMergedDeltaFrame({
    seqFrom: group.seqFrom,
    seq: last.seq,
    id: last.id,
    event: first.event,
    runId: first.runId,
    ...(first.threadId !== undefined ? { threadId: first.threadId } : {}),
    ts: last.ts,
    text: first.text + group.rest,
    ...(first.messageId !== undefined ? { messageId: first.messageId } : {}),
  });
}

/**
 * Coalesces a whole sequence at once (replay): the frames a queue would hand
 * out after being pushed every item. Not bounded in items or bytes: the
 * sequence is (the history read).
 */
export function coalesceEvents(
  items: readonly PendingItem[],
  options: Pick<DeltaCoalescerOptions, 'maxMergedBytes'> = {},
): TakenFrames {
  const queue = new DeltaCoalescer({
    ...options,
    maxItems: Number.MAX_SAFE_INTEGER,
    maxBytes: Number.MAX_SAFE_INTEGER,
  });
  for (const item of items) queue.push(item);
  return queue.takeAll();
}
