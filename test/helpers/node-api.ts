/**
 * Talking to a gateway process over HTTP in tests: operator calls with an
 * API key, and waiting for `/readyz` to say what a test needs.
 */
import type { CliServer } from './cli-process.js';
import { waitFor } from './wait-for.js';

/** A call of the HTTP API with `apiKey` as the bearer; `body` is sent as JSON. */
export type NodeApi = (
  node: CliServer,
  method: string,
  path: string,
  body?: unknown,
) => Promise<Response>;

export function nodeApi(apiKey: string): NodeApi {
  return (node, method, path, body) =>
    fetch(`${node.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${apiKey}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
}

/** Waits until `node`'s `/readyz` answers `status` (a refused connection counts as not yet). */
export async function waitReadyz(node: CliServer, status = 200, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    async () => {
      try {
        return (await fetch(`${node.url}/readyz`)).status === status;
      } catch {
        return false;
      }
    },
    { timeoutMs, intervalMs: 50, what: `${node.url}/readyz to answer ${status}` },
  );
}
