/**
 * Reads a request body as JSON, bounded (PROTOCOL.md section 5: bodies are
 * JSON, at most 1 MiB by default).
 *
 * - `Content-Type` other than `application/json` (parameters aside), or a
 *   charset other than UTF-8: 415, before any byte is read. Structured-syntax
 *   types such as `application/vnd.api+json` are refused too: the API speaks
 *   one media type, and what the docs promise is what the code does.
 * - More than `maxBytes`: 413. A declared `Content-Length` over the limit is
 *   refused at once. An undeclared overflow stops buffering and discards the
 *   rest up to `maxBytes` more, so the client still reads a clean 413 on a
 *   kept-alive connection; past that the read stops and the request stays
 *   incomplete (`req.complete === false`): the caller answers with
 *   `Connection: close`.
 * - Empty or not JSON: 400 naming the field `body`.
 */
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';

/** Throws 415 unless the request declares a JSON body in UTF-8. */
export function checkJsonContentType(contentType: string | undefined): void {
  const [type = '', ...params] = (contentType ?? '').split(';');
  if (type.trim().toLowerCase() !== 'application/json') {
    throw new GatewayError(
      'unsupported_media_type',
      'Content-Type must be application/json',
      'content-type',
    );
  }
  for (const param of params) {
    const [name = '', value = ''] = param.split('=');
    if (name.trim().toLowerCase() !== 'charset') continue;
    const charset = value.trim().replace(/^"|"$/g, '').toLowerCase();
    if (charset !== 'utf-8' && charset !== 'utf8') {
      throw new GatewayError(
        'unsupported_media_type',
        'the JSON body must be UTF-8',
        'content-type',
      );
    }
  }
}

function tooLarge(maxBytes: number): GatewayError {
  return new GatewayError('payload_too_large', `the body is larger than ${maxBytes} bytes`, 'body');
}

/**
 * Reads and parses the JSON body of `req`. Rejects with a `GatewayError`
 * (400, 413 or 415); never with anything else.
 */
export function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    try {
      checkJsonContentType(req.headers['content-type']);
    } catch (error) {
      reject(error);
      return;
    }
    const declared = req.headers['content-length'];
    const drainLimit = maxBytes * 2;
    if (declared !== undefined && Number(declared) > drainLimit) {
      reject(tooLarge(maxBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      fn();
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received <= maxBytes) {
        chunks.push(chunk);
        return;
      }
      // Over the limit: keep nothing more; stop reading once the drain allowance is spent.
      chunks.length = 0;
      if (received > drainLimit) {
        req.pause();
        finish(() => reject(tooLarge(maxBytes)));
      }
    };
    const onEnd = (): void =>
      finish(() => {
        if (received > maxBytes) {
          reject(tooLarge(maxBytes));
          return;
        }
        const text = Buffer.concat(chunks, received).toString('utf8');
        if (text.trim() === '') {
          reject(new GatewayError('bad_request', 'the body is empty; JSON was expected', 'body'));
          return;
        }
        try {
          resolve(JSON.parse(text) as unknown);
        } catch {
          reject(new GatewayError('bad_request', 'the body is not valid JSON', 'body'));
        }
      });
    const onError = (): void =>
      finish(() => reject(new GatewayError('bad_request', 'the body could not be read', 'body')));
    // `close` before `end`: the client went away mid-body.
    const onClose = onError;
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
