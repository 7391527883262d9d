/**
 * A gateway with its HTTP API on 127.0.0.1 (port 0) for the AG-UI route
 * tests, plus what those tests do to it: publish a run's events, and fetch
 * for a stock `HttpAgent` that cuts the TCP connection after a chosen event.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BaseEvent } from '@ag-ui/core';
import { ApiKeys } from '../../src/auth/api-keys.js';
import type { CreateGatewayOptions } from '../../src/gateway/gateway.js';
import { createApiHandler } from '../../src/http/api-routes.js';
import type { JsonValue } from '../../src/protocol/frames.js';
import { startGateway, type Harness, type HarnessOptions } from './gateway-harness.js';

export interface AguiGateway extends Harness {
  /** POST /v1/ag-ui/runs */
  runsUrl: string;
  apiKey: string;
  /** Publishes `steps` as events of run `runId` of `userId`, in order. */
  publishRun(
    userId: string,
    runId: string,
    steps: readonly (readonly [string, JsonValue])[],
  ): Promise<void>;
}

export const AGUI_THREAD_ID = 'thread-1';

export async function startAguiGateway(
  options: Partial<CreateGatewayOptions> & Pick<HarnessOptions, 'leewaySeconds'> = {},
): Promise<AguiGateway> {
  const apiKey = ApiKeys.generate();
  let api: ((req: IncomingMessage, res: ServerResponse) => void) | null = null;
  const harness = await startGateway(options, {
    onRequest: (req, res) => {
      if (api === null) return false;
      api(req, res);
      return true;
    },
  });
  const { gateway } = harness;
  api = createApiHandler({
    gateway,
    supervisor: gateway.supervisor,
    metrics: gateway.metrics,
    apiKeys: new ApiKeys([apiKey]),
    authenticator: gateway.options.authenticator,
    tickets: gateway.tickets,
    ...(options.allowedOrigins !== undefined ? { allowedOrigins: options.allowedOrigins } : {}),
  });
  return {
    ...harness,
    runsUrl: `${harness.httpUrl}/v1/ag-ui/runs`,
    apiKey,
    async publishRun(userId, runId, steps) {
      for (const [event, data] of steps) {
        await gateway.publish(userId, { event, runId, threadId: AGUI_THREAD_ID, data });
      }
    },
  };
}

/**
 * A `fetch` for `HttpAgent` that reads the real response and, right after the
 * event `cutAfter` accepts, aborts the request (the TCP connection is cut) and
 * ends the body it hands on cleanly: the agent sees a stream that stopped
 * there. What each response handed on (its raw text up to the cut) goes to `raw`.
 */
export function cuttingFetch(
  cutAfter: (event: BaseEvent) => boolean,
  raw: string[] = [],
): typeof fetch {
  return async (input, init) => {
    const controller = new AbortController();
    init?.signal?.addEventListener('abort', () => controller.abort());
    const response = await fetch(input, { ...init, signal: controller.signal });
    if (!response.ok || response.body === null) return response;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let pending = '';
    let cut = false;
    const index = raw.push('') - 1;
    const body = new ReadableStream<Uint8Array>({
      async pull(out) {
        if (cut) return;
        const { done, value } = await reader.read();
        if (done) {
          out.close();
          return;
        }
        pending += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = pending.indexOf('\n\n')) !== -1) {
          const block = pending.slice(0, end + 2);
          pending = pending.slice(end + 2);
          out.enqueue(encoder.encode(block));
          raw[index] += block;
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (data !== undefined && cutAfter(JSON.parse(data) as BaseEvent)) {
            cut = true;
            controller.abort();
            out.close();
            return;
          }
        }
      },
      cancel() {
        controller.abort();
      },
    });
    return new Response(body, { status: response.status, headers: response.headers });
  };
}
