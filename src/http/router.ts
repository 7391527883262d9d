/**
 * A method + path table for the HTTP API, without a framework.
 *
 * Templates are literal segments and `{name}` parameters (`/v1/users/{userId}/events`).
 * A parameter matches one non-empty segment and is percent-decoded; a segment
 * that does not decode is no match. The template (never the raw path) is what
 * metrics and logs name a request by, so client-controlled ids never become
 * label values.
 *
 * Paths are matched as sent (`splitRequestTarget`), never normalized: a URL
 * parser would fold `/v1/users/%2e%2e/events` into `/v1/events`, so a dot
 * segment reaches the route as the parameter it is and is refused there.
 *
 * Each route declares the query parameters it takes (none by default); any
 * other one is refused (`unknownQueryParameter`), so a credential under any
 * name (`?apiKey=`) is refused rather than served and logged by a proxy.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export type HttpMethod = 'GET' | 'POST' | 'DELETE' | 'OPTIONS';

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  /** Decoded `{name}` parameters of the template. */
  params: Readonly<Record<string, string>>;
  /** The query string, parsed. */
  query: URLSearchParams;
  /** The matched template, e.g. `/v1/users/{userId}/events`. */
  route: string;
  /** An id for this request, sent back as `X-Request-Id` and used in logs. */
  requestId: string;
}

export type RouteHandler = (ctx: RouteContext) => void | Promise<void>;

export interface RouteOptions {
  /** Query parameters the route takes. Default: none. */
  query?: readonly string[];
}

export type RouteMatch =
  | {
      kind: 'found';
      route: string;
      params: Record<string, string>;
      handler: RouteHandler;
      /** The query parameters this route takes. */
      query: ReadonlySet<string>;
    }
  /** The path exists, not with this method: answer 405 with `Allow`. */
  | { kind: 'method_not_allowed'; route: string; allow: HttpMethod[] }
  | { kind: 'not_found' };

interface Route {
  template: string;
  segments: readonly Segment[];
  handlers: Map<HttpMethod, { handler: RouteHandler; query: ReadonlySet<string> }>;
}

type Segment = { literal: string } | { param: string };

const PARAM = /^\{([A-Za-z][A-Za-z0-9]*)\}$/;

function parseTemplate(template: string): Segment[] {
  if (!template.startsWith('/')) throw new TypeError(`route ${template} must start with "/"`);
  return template
    .slice(1)
    .split('/')
    .map((part) => {
      const param = PARAM.exec(part);
      if (param) return { param: param[1] as string };
      if (part.includes('{') || part.includes('}')) {
        throw new TypeError(`route ${template}: bad segment "${part}"`);
      }
      return { literal: part };
    });
}

export class Router {
  private readonly routes: Route[] = [];

  /** Registers `handler` for `method` on `template`; a second handler for the same pair throws. */
  on(
    method: HttpMethod,
    template: string,
    handler: RouteHandler,
    options: RouteOptions = {},
  ): this {
    let route = this.routes.find((r) => r.template === template);
    if (!route) {
      route = { template, segments: parseTemplate(template), handlers: new Map() };
      this.routes.push(route);
    }
    if (route.handlers.has(method)) throw new TypeError(`route ${method} ${template} is taken`);
    route.handlers.set(method, { handler, query: new Set(options.query ?? []) });
    return this;
  }

  /** Finds the route of `method` and `pathname` (no query string). */
  match(method: string, pathname: string): RouteMatch {
    const parts = pathname.slice(1).split('/');
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts);
      if (!params) continue;
      const entry = route.handlers.get(method as HttpMethod);
      if (entry) return { kind: 'found', route: route.template, params, ...entry };
      return {
        kind: 'method_not_allowed',
        route: route.template,
        allow: [...route.handlers.keys()],
      };
    }
    return { kind: 'not_found' };
  }
}

function matchSegments(
  segments: readonly Segment[],
  parts: readonly string[],
): Record<string, string> | null {
  if (segments.length !== parts.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as Segment;
    const part = parts[i] as string;
    if ('literal' in segment) {
      if (segment.literal !== part) return null;
      continue;
    }
    if (part === '') return null;
    try {
      params[segment.param] = decodeURIComponent(part);
    } catch {
      return null;
    }
  }
  return params;
}

/**
 * The path (as sent, not normalized) and the query of a request target. An
 * origin-form target (`/path?query`) is split as is; any other form (absolute
 * `http://host/path`, `*`) goes through the URL parser.
 */
export function splitRequestTarget(target: string): { pathname: string; query: URLSearchParams } {
  if (target.startsWith('/')) {
    const end = target.search(/[?#]/);
    if (end === -1) return { pathname: target, query: new URLSearchParams() };
    const rest = target.slice(end);
    const hash = rest.indexOf('#');
    return {
      pathname: target.slice(0, end),
      query: new URLSearchParams(hash === -1 ? rest : rest.slice(0, hash)),
    };
  }
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    // Not a URL at all: a path no route has.
    return { pathname: '', query: new URLSearchParams() };
  }
  return { pathname: url.pathname, query: url.searchParams };
}

/** Query parameter names that may be echoed in an error: a token sent as `?<jwt>` is a name. */
const PLAIN_NAME = /^[A-Za-z_]{1,32}$/;

/**
 * The first query parameter of `query` that `allowed` lacks, as it may be
 * shown in an error: its name when that is a plain word, else `query`. Never
 * its value, which may be a credential. Undefined when every one is allowed.
 */
export function unknownQueryParameter(
  query: URLSearchParams,
  allowed: ReadonlySet<string>,
): string | undefined {
  for (const name of query.keys()) {
    if (!allowed.has(name)) return PLAIN_NAME.test(name) ? name : 'query';
  }
  return undefined;
}
