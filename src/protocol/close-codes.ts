/**
 * WebSocket close codes of protocol v1 (PROTOCOL.md section 2, "Close codes").
 *
 * One table (`CLOSE_CODE_TABLE`) shared by the server and the client SDK:
 * `CloseCode` (name → number) and `CLOSE_CODES` (the rows, in code order) are
 * read from it, and `docs/errors.md` mirrors it (test/unit/protocol-tables.test.ts).
 * `reconnect` tells a client what to do after the close, so the SDK never
 * hard-codes a code.
 */

/** What a client does after a close. */
export type ReconnectAdvice =
  /** Nothing went wrong, or the app closed on purpose: stay closed. */
  | 'stop'
  /** Reconnect with backoff and resume from the cursor. */
  | 'reconnect'
  /** Get a fresh token first, then reconnect and resume. */
  | 'refresh-token';

interface CloseCodeRow {
  readonly code: number;
  readonly meaning: string;
  readonly reconnect: ReconnectAdvice;
}

/** Every close code the gateway, ws or the client SDK uses, by name. */
const CLOSE_CODE_TABLE = {
  Normal: { code: 1000, meaning: 'normal closure', reconnect: 'stop' },
  GoingAway: {
    code: 1001,
    meaning: 'server draining or shutting down',
    reconnect: 'reconnect',
  },
  ProtocolError: {
    code: 1002,
    meaning: 'WebSocket protocol violation in a client frame (sent by ws)',
    reconnect: 'reconnect',
  },
  AbnormalClosure: {
    code: 1006,
    meaning:
      'the connection dropped without a close frame (never sent: reported locally, also by the client when it has no WebSocket)',
    reconnect: 'reconnect',
  },
  InvalidPayload: {
    code: 1007,
    meaning: 'a client text frame is not valid UTF-8 (sent by ws)',
    reconnect: 'reconnect',
  },
  PolicyViolation: {
    code: 1008,
    meaning: 'repeated bad frames or frame rate exceeded',
    reconnect: 'stop',
  },
  MessageTooBig: { code: 1009, meaning: 'client frame too large', reconnect: 'stop' },
  StreamReset: {
    code: 1012,
    meaning: 'stream reset or broker lost: reconnect and resume; the welcome tells the gap',
    reconnect: 'reconnect',
  },
  ClientReconnect: {
    code: 4000,
    meaning:
      'sent by the client: it left the socket itself (dead connection, connect timeout, reconnect())',
    reconnect: 'reconnect',
  },
  TokenExpired: {
    code: 4401,
    meaning: 'token expired or revoked',
    reconnect: 'refresh-token',
  },
  Forbidden: {
    code: 4403,
    meaning: 'forbidden: refresh for another user, or user blocked',
    reconnect: 'stop',
  },
  Timeout: { code: 4408, meaning: 'heartbeat or ack timeout', reconnect: 'reconnect' },
  Replaced: {
    code: 4409,
    meaning: 'evicted by the per-user connection limit',
    reconnect: 'stop',
  },
  SlowConsumer: {
    code: 4429,
    meaning: 'slow consumer: send buffer over its limit',
    reconnect: 'reconnect',
  },
} as const satisfies Record<string, CloseCodeRow>;

export type CloseCodeName = keyof typeof CLOSE_CODE_TABLE;

export interface CloseCodeInfo extends CloseCodeRow {
  readonly name: CloseCodeName;
}

/** Close codes by name, e.g. `CloseCode.StreamReset` (1012). */
export const CloseCode = Object.freeze(
  Object.fromEntries(Object.entries(CLOSE_CODE_TABLE).map(([name, row]) => [name, row.code])) as {
    readonly [N in CloseCodeName]: (typeof CLOSE_CODE_TABLE)[N]['code'];
  },
);

export type CloseCodeValue = (typeof CloseCode)[CloseCodeName];

/** The rows of the table, in code order. */
export const CLOSE_CODES: readonly CloseCodeInfo[] = (
  Object.entries(CLOSE_CODE_TABLE) as [CloseCodeName, CloseCodeRow][]
)
  .map(([name, row]) => ({ name, ...row }))
  .sort((a, b) => a.code - b.code);

const byCode = new Map<number, CloseCodeInfo>(CLOSE_CODES.map((info) => [info.code, info]));

/**
 * What a client should do after a close with `code`. Codes outside the table
 * (1011 server error, proxies' codes) mean the transport failed, so the answer
 * is to reconnect.
 */
export function reconnectAdvice(code: number): ReconnectAdvice {
  return byCode.get(code)?.reconnect ?? 'reconnect';
}

export function closeCodeInfo(code: number): CloseCodeInfo | undefined {
  return byCode.get(code);
}
