/**
 * The settings of the AG-UI SSE streams (`POST /v1/ag-ui/runs`), with their
 * defaults in one place.
 */
import { nonNegativeInteger, positiveInteger } from '../options/validators.js';

export interface AguiStreamOptions {
  /**
   * How long a thinking or text delta may wait for the next one to merge
   * with (the runs' coalescing rules); 0 sends each at once. Default 40 ms.
   */
  coalesceWindowMs: number;
  /** Interval of `: keep-alive` comments on a stream. Default 15 s. */
  keepAliveMs: number;
  /** Open AG-UI streams on the node; past it 503 `unavailable`. Default 10 000. */
  maxStreams: number;
  /** Open AG-UI streams of one user on the node; past it 429 `too_many_connections`. Default 20. */
  maxStreamsPerUser: number;
}

export const DEFAULT_AGUI_STREAM_OPTIONS: Readonly<AguiStreamOptions> = {
  coalesceWindowMs: 40,
  keepAliveMs: 15_000,
  maxStreams: 10_000,
  maxStreamsPerUser: 20,
};

/** Applies the defaults and checks each setting, naming the bad one. */
export function resolveAguiStreamOptions(
  options: Partial<AguiStreamOptions> = {},
): AguiStreamOptions {
  const merged = { ...DEFAULT_AGUI_STREAM_OPTIONS, ...options };
  return {
    coalesceWindowMs: nonNegativeInteger('option agui.coalesceWindowMs', merged.coalesceWindowMs),
    keepAliveMs: positiveInteger('option agui.keepAliveMs', merged.keepAliveMs),
    maxStreams: positiveInteger('option agui.maxStreams', merged.maxStreams),
    maxStreamsPerUser: positiveInteger('option agui.maxStreamsPerUser', merged.maxStreamsPerUser),
  };
}
