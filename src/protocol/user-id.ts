/**
 * `sub` of a user token and `{userId}` of the HTTP API (PROTOCOL.md section 1):
 * 1-128 characters of `[A-Za-z0-9._:@-]`, and not made only of dots. `.` and
 * `..` are path steps: a URL parser folds `/v1/users/%2e%2e/events` into
 * `/v1/events`, so such a user could be neither published to nor revoked
 * (docs/protocol-notes.md).
 */
export const USER_ID_PATTERN = /^(?!\.+$)[A-Za-z0-9._:@-]{1,128}$/;

/** What every refusal of a user id says, wherever the id came from. */
export const USER_ID_RULE = '1-128 characters of [A-Za-z0-9._:@-], not only dots';

export function isValidUserId(value: unknown): value is string {
  return typeof value === 'string' && USER_ID_PATTERN.test(value);
}
