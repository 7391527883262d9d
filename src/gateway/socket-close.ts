/**
 * What a server-initiated close says (its reason), and which code ws sent
 * when it closed a socket itself for a receiver error.
 */
import { CloseCode } from '../protocol/close-codes.js';

/** Close reasons sent with server-initiated closes (short, fixed, nothing from the client). */
export const CLOSE_REASONS: Record<number, string> = {
  [CloseCode.GoingAway]: 'server shutting down',
  [CloseCode.PolicyViolation]: 'policy violation',
  [CloseCode.TokenExpired]: 'token expired or revoked',
  [CloseCode.Forbidden]: 'forbidden',
  [CloseCode.Timeout]: 'timeout',
  [CloseCode.Replaced]: 'connection limit: replaced',
  [CloseCode.SlowConsumer]: 'slow consumer',
  [CloseCode.StreamReset]: 'stream reset: reconnect and resume',
};

/**
 * The close code ws sends for a receiver error (ws keeps it on a private
 * symbol; its public `code` names the error): 1009 for an oversized frame or
 * message, 1008 for too many fragments, 1007 for invalid UTF-8, 1002 for every
 * other protocol violation. Null for socket errors (ECONNRESET…), which send none.
 */
export function wsErrorCloseCode(error: Error): number | null {
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code !== 'string' || !code.startsWith('WS_ERR_')) return null;
  switch (code) {
    case 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH':
    case 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH':
      return CloseCode.MessageTooBig;
    case 'WS_ERR_TOO_MANY_BUFFERED_PARTS':
      return CloseCode.PolicyViolation;
    case 'WS_ERR_INVALID_UTF8':
      return CloseCode.InvalidPayload;
    default:
      return CloseCode.ProtocolError;
  }
}
