/**
 * Reads `exp` from a JWT payload without verifying the token: the client only
 * needs to know when to ask for a new one. The server verifies.
 */

/** `exp` of a JWT in ms since the epoch, or null when it is absent or unreadable. */
export function jwtExpiresAt(token: string): number | null {
  const payload = token.split('.')[1];
  if (payload === undefined || payload.length === 0 || payload.length > 16_384) return null;
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/');
    const binary = atob(base64.padEnd(base64.length + ((4 - (base64.length % 4)) % 4), '='));
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    const claims: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof claims !== 'object' || claims === null) return null;
    const exp = (claims as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null;
  } catch {
    // Not base64url or not JSON: an opaque token, which has no known expiry.
    return null;
  }
}
