/**
 * One AG-UI stream of one run (`POST /v1/ag-ui/runs`): it follows the user's
 * live stream like a connection does, keeps only the run's events, coalesces
 * their deltas for a short window (the runs' rules, `DeltaCoalescer`), maps
 * them to AG-UI (`src/agui/`) and writes them to an SSE sink.
 *
 * Life: `prepare` (no byte written yet) finds the run and plans the start;
 * `attach` writes the start and goes live; the stream ends right after the
 * run's terminal event, or with a RUN_ERROR `agentsocket.stream_interrupted`
 * naming the cursor to resume from (a drain, lost history, a reader past the
 * slow-consumer bound, an expired token), never with a silent close.
 *
 * Ordering, as for a connection: the user's live events reach `onEvent` from
 * the moment the listener is registered and the subscription held; while the
 * start is read they wait in a bounded buffer. Live events are taken strictly
 * in seq order (`lastSeq + 1`); anything else re-reads history from `lastSeq`
 * (`resync`), and a history that lost events ends the stream.
 *
 * Start (`agui-stream-start.ts`): with a `Last-Event-ID` whose run is wholly
 * in history, `resumeAtCursor` over the run folded up to the cursor;
 * otherwise snapshot mode over the engine's snapshot, then the live tail.
 */
import type { Message } from '@ag-ui/core';
import type { Logger } from 'pino';
import type { RunStore } from '../broker/run-store.js';
import type { HistoryRead, StreamEngine } from '../broker/stream-engine.js';
import { GatewayError, RETRY_AFTER_SECONDS } from '../errors.js';
import { agentsocketEventOf } from '../agui/agentsocket-event.js';
import type { AguiPosition } from '../agui/agui-cursor.js';
import { streamInterrupted } from '../agui/agui-interrupt.js';
import type { AguiMapper } from '../agui/agui-mapping.js';
import type { AgentsocketEvent, AguiOutput, StreamInterruptReason } from '../agui/agui-types.js';
import { encodeSseEvent, SSE_KEEP_ALIVE } from '../agui/sse-encoding.js';
import { encodeEventFrame } from '../protocol/event-frame.js';
import { DeltaCoalescer, pendingItemOf } from '../runs/delta-coalescer.js';
import { planStart, type HeldEvent } from './agui-stream-start.js';
import type { RunListener } from './run-listeners.js';

/** What a stream needs of the engine's runs. */
export type RunReader = Pick<RunStore, 'readRun'>;

export interface AguiStreamRequest {
  userId: string;
  runId: string;
  /** `Last-Event-ID`, read; null: snapshot mode. */
  position: AguiPosition | null;
  /** `messages` of the RunAgentInput, kept in front of the run's in MESSAGES_SNAPSHOT. */
  requestMessages: readonly Message[];
  /** `threadId` of the RunAgentInput, for a run that has none. */
  threadId?: string;
  /** How long to wait for a run that has not started yet (ms, 0: not at all). */
  waitMs: number;
  /** When the user's token expires (ms since the Unix epoch); null: never. */
  expiresAt: number | null;
  /** Aborted when the client goes away: a stream still opening (say, waiting) gives up its slot. */
  signal?: AbortSignal;
}

/** Where a stream writes: the HTTP response, seen through what the stream needs. */
export interface SseSink {
  write(chunk: string): void;
  /** Bytes written and not yet handed to the socket. */
  readonly bufferedBytes: number;
  /** Whether `onDrain`'s listeners will be called (the response is past its high-water mark). */
  readonly needsDrain: boolean;
  /** Ends the response (the sink bounds how long a slow reader may hold it). */
  end(): void;
  onDrain(listener: () => void): void;
}

export interface AguiStreamSettings {
  coalesceWindowMs: number;
  keepAliveMs: number;
  /** The slow-consumer bound: bytes unsent (the response's and the queue's) before the stream ends. */
  maxBufferedBytes: number;
  /** Live events held while the start is read; past it, history is re-read. */
  maxReplayBuffer: number;
}

export interface AguiStreamHost {
  readonly streams: Pick<StreamEngine, 'readHistory'>;
  readonly runs: RunReader;
  readonly settings: AguiStreamSettings;
  readonly logger: Logger;
  /** The stream is over (ended, interrupted or abandoned): unregister it. */
  ended(stream: AguiRunStream): void;
  /** The stream is being ended with `stream_interrupted` (for the metric). */
  interrupted(reason: StreamInterruptReason): void;
}

type Phase = 'opening' | 'reading' | 'live' | 'ended';

/**
 * Unsent bytes past which events wait in the queue (and merge) until the
 * response drains, as a WebSocket connection coalesces past its threshold.
 */
const WAIT_FOR_DRAIN_ABOVE_BYTES = 256 * 1024;

/** Longest timer Node accepts; a token expiring later is checked again then. */
const MAX_TIMER_MS = 2_147_483_647;

export class AguiRunStream implements RunListener {
  readonly userId: string;
  readonly runId: string;
  private phase: Phase = 'opening';
  private buffer: HeldEvent[] = [];
  private bufferOverflowed = false;
  private resyncRequested = false;
  private epoch = '';
  /** The last seq of the user's stream taken (of any run). */
  private lastSeq = 0;
  private mapper: AguiMapper | null = null;
  private startOutputs: AguiOutput[] = [];
  private tail: HeldEvent[] = [];
  private interruptAtStart: StreamInterruptReason | null = null;
  private interruptedWhileOpening: StreamInterruptReason | null = null;
  /** The cursor of the last AG-UI event written: what an interruption names. */
  private lastCursor = '';
  private readonly queue: DeltaCoalescer;
  private sink: SseSink | null = null;
  private awaitingDrain = false;
  private windowTimer: ReturnType<typeof setTimeout> | null = null;
  private keepAlive: ReturnType<typeof setInterval> | null = null;
  private expiry: ReturnType<typeof setTimeout> | null = null;
  private runSeen: (() => void) | null = null;

  constructor(
    private readonly request: AguiStreamRequest,
    private readonly host: AguiStreamHost,
  ) {
    this.userId = request.userId;
    this.runId = request.runId;
    // The queue is where a slow reader's events wait (and merge): bounded
    // like a connection's unsent bytes.
    this.queue = new DeltaCoalescer({ maxBytes: host.settings.maxBufferedBytes });
  }

  /**
   * Finds the run and plans the start; writes nothing. Rejects with 404 for
   * a run this user does not have (after `waitMs`), 400 for a forged cursor,
   * 503 when the node drains meanwhile.
   */
  async prepare(): Promise<void> {
    const { userId, runId, waitMs } = this.request;
    let snapshot = await this.host.runs.readRun(userId, runId);
    if (snapshot === null && waitMs > 0) {
      await this.waitForRun(waitMs);
      this.assertOpening();
      snapshot = await this.host.runs.readRun(userId, runId);
    }
    this.assertOpening();
    // One answer for a run nobody started and another user's run.
    if (snapshot === null) throw new GatewayError('not_found', 'no such run', 'runId');
    const planned = await planStart(this.host.streams, this.request, snapshot);
    this.startOutputs = planned.start.outputs;
    this.mapper = planned.start.mapper;
    this.tail = planned.tail;
    this.epoch = planned.position?.epoch ?? snapshot.epoch;
    this.lastSeq = planned.position?.headSeq ?? snapshot.upToSeq;
    this.interruptAtStart = planned.interrupt ?? null;
    this.assertOpening();
  }

  /** Writes the start, then follows the run live until its end. */
  attach(sink: SseSink): void {
    if (this.phase !== 'opening' || this.mapper === null) return;
    this.sink = sink;
    sink.onDrain(() => {
      if (!this.awaitingDrain) return;
      this.awaitingDrain = false;
      this.flush();
    });
    this.write(this.startOutputs);
    this.startOutputs = [];
    if (this.mapper.state.finished) {
      this.finish(true);
      return;
    }
    this.phase = 'live';
    // A drain between `prepare` and here, or a stream lost at the start.
    const interrupted = this.interruptedWhileOpening ?? this.interruptAtStart;
    if (interrupted !== null) {
      this.interrupt(interrupted);
      return;
    }
    this.startTimers();
    const tail = this.tail;
    this.tail = [];
    for (const held of tail) {
      this.enqueue(held);
      if (this.phase !== 'live') return;
    }
    this.drainBuffer();
  }

  onEvent(event: AgentsocketEvent, frame: string): void {
    if (this.phase === 'ended') return;
    if (this.phase === 'live') {
      this.accept({ event, frame });
      return;
    }
    if (event.runId === this.runId) this.runSeen?.();
    if (this.buffer.length < this.host.settings.maxReplayBuffer) this.buffer.push({ event, frame });
    else this.bufferOverflowed = true;
  }

  onResync(): void {
    void this.resync();
  }

  /**
   * Ends the stream with RUN_ERROR `agentsocket.stream_interrupted`, after
   * writing what was already received (except for a slow reader, whose bound
   * is the point). While still opening, `prepare` rejects with 503 instead.
   */
  interrupt(reason: StreamInterruptReason): void {
    if (this.phase === 'ended') return;
    if (this.sink === null || this.mapper === null) {
      this.interruptedWhileOpening ??= reason;
      this.runSeen?.();
      return;
    }
    if (reason !== 'slow_consumer') this.writeQueued();
    if (!this.mapper.state.finished) {
      this.host.interrupted(reason);
      this.write([streamInterrupted(this.epoch, this.lastCursor, reason)]);
    }
    this.finish(true);
  }

  /** The client went away (or the request failed before the stream began). */
  abandon(): void {
    this.finish(false);
  }

  private assertOpening(): void {
    if (this.interruptedWhileOpening !== null) {
      throw new GatewayError('unavailable', 'server is draining', undefined, RETRY_AFTER_SECONDS);
    }
    if (this.phase === 'ended') {
      throw new GatewayError('unavailable', 'the request was abandoned');
    }
  }

  /** Resolves when an event of the run arrives (or was buffered already), or after `ms`. */
  private waitForRun(ms: number): Promise<void> {
    if (this.buffer.some((held) => held.event.runId === this.runId)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.runSeen = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.runSeen = done;
    });
  }

  /** A live event, taken only as `lastSeq + 1`; anything else re-reads history. */
  private accept(held: HeldEvent): void {
    const { event } = held;
    if (event.epoch !== this.epoch) {
      this.interrupt('history_lost');
      return;
    }
    if (event.seq <= this.lastSeq) return;
    if (event.seq !== this.lastSeq + 1) {
      // The event itself comes with the re-read.
      void this.resync();
      return;
    }
    this.lastSeq = event.seq;
    if (event.runId === this.runId) this.enqueue(held);
  }

  private async resync(): Promise<void> {
    if (this.phase === 'opening' || this.phase === 'reading') {
      this.resyncRequested = true;
      return;
    }
    if (this.phase !== 'live') return;
    this.phase = 'reading';
    let read: HistoryRead;
    try {
      read = await this.host.streams.readHistory(this.userId, {
        kind: 'position',
        epoch: this.epoch,
        seq: this.lastSeq,
      });
    } catch (error) {
      this.host.logger.warn(
        { userId: this.userId, err: (error as Error).message },
        'AG-UI stream: history read failed',
      );
      read = { epoch: this.epoch, headSeq: 0, ackedSeq: 0, events: [], from: 0, gap: true };
    }
    if (this.phase !== 'reading') return;
    this.phase = 'live';
    if (read.gap || read.epoch !== this.epoch) {
      this.interrupt('history_lost');
      return;
    }
    for (const stored of read.events) {
      const frame = encodeEventFrame(stored);
      this.accept({ event: agentsocketEventOf(frame, read.epoch), frame });
      if (this.phase !== 'live') return;
    }
    this.drainBuffer();
  }

  /** Live events held meanwhile, through the same seq rules. */
  private drainBuffer(): void {
    const held = this.buffer;
    const again = this.bufferOverflowed || this.resyncRequested;
    this.buffer = [];
    this.bufferOverflowed = false;
    this.resyncRequested = false;
    for (const item of held) {
      this.accept(item);
      // A gap started a re-read (it covers the rest), or the stream ended.
      if (this.phase !== 'live') return;
    }
    if (again) void this.resync();
  }

  private enqueue(held: HeldEvent): void {
    const item = pendingItemOf(held.frame, held.event);
    // The slow-consumer bound counts what the socket has not taken and what waits here.
    const unsent = (this.sink?.bufferedBytes ?? 0) + this.queue.bytes + item.bytes;
    if (unsent > this.host.settings.maxBufferedBytes || !this.queue.push(item)) {
      this.interrupt('slow_consumer');
      return;
    }
    const window = this.host.settings.coalesceWindowMs;
    // Anything but a delta is a barrier: it goes out now, with what waits before it.
    if (item.kind === 'frame' || window === 0) {
      this.flush();
      return;
    }
    this.windowTimer ??= setTimeout(() => {
      this.windowTimer = null;
      this.flush();
    }, window);
  }

  /** Writes what is queued, unless the reader is behind (then on its drain). */
  private flush(): void {
    if (this.windowTimer !== null) {
      clearTimeout(this.windowTimer);
      this.windowTimer = null;
    }
    if (this.sink === null || this.phase === 'ended') return;
    // A reader behind by more than that gets its events merged while it catches up.
    const { maxBufferedBytes } = this.host.settings;
    // Only a response that will emit 'drain' may be waited for: below its
    // high-water mark none comes, and the queue (say, the terminal event) would stay.
    const behind =
      this.sink.bufferedBytes > Math.min(WAIT_FOR_DRAIN_ABOVE_BYTES, maxBufferedBytes / 2);
    if (behind && this.sink.needsDrain) {
      this.awaitingDrain = true;
      return;
    }
    this.writeQueued();
    if (this.mapper?.state.finished) this.finish(true);
  }

  private writeQueued(): void {
    const mapper = this.mapper;
    if (mapper === null || this.queue.length === 0) return;
    const taken = this.queue.takeAll();
    this.write(taken.frames.flatMap((frame) => mapper.map(agentsocketEventOf(frame, this.epoch))));
  }

  private write(outputs: readonly AguiOutput[]): void {
    const last = outputs.at(-1);
    if (this.sink === null || last === undefined) return;
    this.sink.write(outputs.map(encodeSseEvent).join(''));
    const meta = (last.event.metadata as { agentsocket?: { cursor?: unknown } } | undefined)
      ?.agentsocket;
    if (typeof meta?.cursor === 'string') this.lastCursor = meta.cursor;
  }

  private startTimers(): void {
    const { keepAliveMs } = this.host.settings;
    this.keepAlive = setInterval(() => {
      if (this.sink !== null && this.sink.bufferedBytes === 0) this.sink.write(SSE_KEEP_ALIVE);
    }, keepAliveMs);
    this.keepAlive.unref?.();
    this.armExpiry();
  }

  /** A stream does not outlive its token (a connection closes with 4401 then). */
  private armExpiry(): void {
    const { expiresAt } = this.request;
    if (expiresAt === null) return;
    const left = expiresAt - Date.now();
    this.expiry = setTimeout(
      () => (left > MAX_TIMER_MS ? this.armExpiry() : this.interrupt('token_expired')),
      Math.max(0, Math.min(left, MAX_TIMER_MS)),
    );
    this.expiry.unref?.();
  }

  private finish(endSink: boolean): void {
    if (this.phase === 'ended') return;
    this.phase = 'ended';
    if (this.windowTimer !== null) clearTimeout(this.windowTimer);
    if (this.keepAlive !== null) clearInterval(this.keepAlive);
    if (this.expiry !== null) clearTimeout(this.expiry);
    this.buffer = [];
    this.tail = [];
    this.runSeen?.();
    if (endSink) this.sink?.end();
    this.host.ended(this);
  }
}
