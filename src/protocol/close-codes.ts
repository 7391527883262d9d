/**
 * WebSocket close codes of protocol v1 (PROTOCOL.md section 2, "Close codes").
 *
 * One table shared by the server and the client SDK. `reconnect` tells a
 * client what to do after the close, so the SDK never hard-codes a code.
 */

/** What a client does after a close. */
export type ReconnectAdvice =
  /** Nothing went wrong, or the app closed on purpose: stay closed. */
  | 'stop'
  /** Reconnect with backoff and resume from the cursor. */
  | 'reconnect'
  /** Get a fresh token first, then reconnect and resume. */
  | 'refresh-token';

export interface CloseCodeInfo {
  readonly code: number;
  readonly name: CloseCodeName;
  readonly meaning: string;
  readonly reconnect: ReconnectAdvice;
}

export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  PolicyViolation: 1008,
  StreamReset: 1012,
  MessageTooBig: 1009,
  TokenExpired: 4401,
  Forbidden: 4403,
  Timeout: 4408,
  Replaced: 4409,
  SlowConsumer: 4429,
  ClientReconnect: 4000,
} as const;

export type CloseCodeName = keyof typeof CloseCode;
export type CloseCodeValue = (typeof CloseCode)[CloseCodeName];

export const CLOSE_CODES: readonly CloseCodeInfo[] = [
  { code: 1000, name: 'Normal', meaning: 'normal closure', reconnect: 'stop' },
  {
    code: 1001,
    name: 'GoingAway',
    meaning: 'server draining or shutting down',
    reconnect: 'reconnect',
  },
  {
    code: 1008,
    name: 'PolicyViolation',
    meaning: 'repeated bad frames or frame rate exceeded',
    reconnect: 'stop',
  },
  { code: 1009, name: 'MessageTooBig', meaning: 'client frame too large', reconnect: 'stop' },
  {
    code: 1012,
    name: 'StreamReset',
    meaning: 'stream reset or broker lost: reconnect and resume; the welcome tells the gap',
    reconnect: 'reconnect',
  },
  {
    code: 4000,
    name: 'ClientReconnect',
    meaning:
      'sent by the client: it left the socket itself (dead connection, connect timeout, reconnect())',
    reconnect: 'reconnect',
  },
  {
    code: 4401,
    name: 'TokenExpired',
    meaning: 'token expired or revoked',
    reconnect: 'refresh-token',
  },
  {
    code: 4403,
    name: 'Forbidden',
    meaning: 'forbidden: refresh for another user, or user blocked',
    reconnect: 'stop',
  },
  { code: 4408, name: 'Timeout', meaning: 'heartbeat or ack timeout', reconnect: 'reconnect' },
  {
    code: 4409,
    name: 'Replaced',
    meaning: 'evicted by the per-user connection limit',
    reconnect: 'stop',
  },
  {
    code: 4429,
    name: 'SlowConsumer',
    meaning: 'slow consumer: send buffer over its limit',
    reconnect: 'reconnect',
  },
];

const byCode = new Map<number, CloseCodeInfo>(CLOSE_CODES.map((info) => [info.code, info]));

/**
 * What a client should do after a close with `code`. Codes outside the table
 * (1006 abnormal closure, 1011 server error, proxies' codes) mean the transport
 * failed, so the answer is to reconnect.
 */
export function reconnectAdvice(code: number): ReconnectAdvice {
  return byCode.get(code)?.reconnect ?? 'reconnect';
}

export function closeCodeInfo(code: number): CloseCodeInfo | undefined {
  return byCode.get(code);
}
