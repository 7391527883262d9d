/**
 * `GET /v1/openapi.json`: the OpenAPI 3.1 description of the HTTP API.
 *
 * The source is `docs/openapi.yaml`; the node serves `docs/openapi.json`,
 * generated beside it by `scripts/openapi-json.mjs` (no YAML parser at
 * runtime), which ships in the package's `docs/`. The file is read on the
 * first request, not at start, and kept: one document per node. The batch
 * limit is the node's own, so a client validating against the served
 * document refuses what this node refuses.
 */
import { readFile } from 'node:fs/promises';
import { sendJson } from './json-response.js';
import type { RouteHandler } from './router.js';

/** The same path from `src/http/` (tests) and `dist/http/` (the package). */
export const OPENAPI_JSON_URL = new URL('../../docs/openapi.json', import.meta.url);

interface OpenApiDocument {
  components: { schemas: { BatchRequest: { properties: { events: { maxItems: number } } } } };
}

/** Reads the document and applies this node's limits to it. */
export async function loadOpenApiDocument(maxBatchEvents: number): Promise<unknown> {
  const document = JSON.parse(await readFile(OPENAPI_JSON_URL, 'utf8')) as OpenApiDocument;
  document.components.schemas.BatchRequest.properties.events.maxItems = maxBatchEvents;
  return document;
}

export function createOpenApiRoute(maxBatchEvents: number): RouteHandler {
  let loaded: Promise<unknown> | null = null;
  return async ({ res }) => {
    loaded ??= loadOpenApiDocument(maxBatchEvents);
    sendJson(res, 200, await loaded);
  };
}
