/**
 * The WebSocket the SDK needs: the browser's native one and the `ws` package
 * both fit, without a cast. Handlers are declared as methods so that their
 * parameters are checked bivariantly (DOM `MessageEvent` and ws's
 * `MessageEvent` are both wider than what the SDK reads).
 */

export interface MessageLike {
  data: unknown;
}
export interface CloseLike {
  code: number;
  reason: string;
}

export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  onopen: { handler(event: unknown): void }['handler'] | null;
  onmessage: { handler(event: MessageLike): void }['handler'] | null;
  onclose: { handler(event: CloseLike): void }['handler'] | null;
  onerror: { handler(event: unknown): void }['handler'] | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** Options of the `ws` constructor the SDK uses; a browser's WebSocket ignores them. */
export interface WebSocketInitLike {
  headers?: Record<string, string>;
}

export type WebSocketConstructorLike = new (
  url: string,
  protocols?: string | string[],
  options?: WebSocketInitLike,
) => WebSocketLike;

/** `readyState` of an open socket (the same number in every implementation). */
export const WS_OPEN = 1;

/** True under Node (where the `ws` package can be loaded); false in a browser. */
export function isNodeRuntime(): boolean {
  const process = (globalThis as { process?: { versions?: { node?: unknown } } }).process;
  return typeof process?.versions?.node === 'string';
}

/**
 * The constructor to use: the one given, else `globalThis.WebSocket` (browsers,
 * Deno, Node 22+), else the `ws` package loaded on demand (Node 20). With
 * `needsHeaders` (auth `header`) the global one is skipped: a native
 * WebSocket takes no headers and would silently send no `Authorization`, so
 * `ws` is loaded instead. The specifier sits in a variable so that bundlers
 * and the browser type-check do not try to resolve `ws`.
 */
export async function resolveWebSocket(
  given: WebSocketConstructorLike | undefined,
  needsHeaders = false,
): Promise<WebSocketConstructorLike> {
  if (given) return given;
  const native = (globalThis as { WebSocket?: WebSocketConstructorLike }).WebSocket;
  if (native && !needsHeaders) return native;
  const specifier = 'ws';
  let loaded: unknown;
  try {
    loaded = await import(/* @vite-ignore */ specifier);
  } catch (cause) {
    throw new Error('no WebSocket: pass option WebSocket, or install the "ws" package', {
      cause,
    });
  }
  const mod = loaded as {
    default?: WebSocketConstructorLike;
    WebSocket?: WebSocketConstructorLike;
  };
  const ctor = mod.WebSocket ?? mod.default;
  if (typeof ctor !== 'function') throw new Error('the "ws" package exports no WebSocket');
  return ctor;
}
