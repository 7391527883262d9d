/**
 * CORS of the routes a browser calls with a user token (`POST /v1/tickets`,
 * `POST /v1/ag-ui/runs`): an allowed `Origin` is echoed (on errors too, so a
 * browser can read them); any other is refused with 403. No credentials mode:
 * the token travels in `Authorization`, never in a cookie.
 */
import { GatewayError } from '../errors.js';
import type { RouteContext } from './router.js';

/** How long a browser may cache a preflight answer, in seconds. */
const PREFLIGHT_MAX_AGE_SECONDS = 600;

export interface Cors {
  /** Echoes an allowed `Origin`; throws 403 for another one. No `Origin`: nothing to do. */
  apply(ctx: RouteContext): void;
  /** Answers a preflight: 204 with the methods and request headers the route takes. */
  preflight(ctx: RouteContext, methods: string, headers: string): void;
}

/** `origins` empty, absent or holding `*`: any origin. */
export function createCors(origins: readonly string[] | undefined): Cors {
  const anyOrigin = origins === undefined || origins.length === 0 || origins.includes('*');
  const allowed = new Set(origins ?? []);
  const apply = ({ req, res }: RouteContext): void => {
    const origin = req.headers.origin;
    if (origin === undefined) return;
    if (!anyOrigin && !allowed.has(origin)) {
      throw new GatewayError('forbidden', 'origin not allowed', 'origin');
    }
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Vary', 'Origin');
  };
  return {
    apply,
    preflight(ctx, methods, headers) {
      apply(ctx);
      ctx.res.writeHead(204, {
        'Access-Control-Allow-Methods': methods,
        'Access-Control-Allow-Headers': headers,
        'Access-Control-Max-Age': String(PREFLIGHT_MAX_AGE_SECONDS),
      });
      ctx.res.end();
    },
  };
}
