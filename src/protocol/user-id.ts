/** `sub` of a user token and `{userId}` of the HTTP API (PROTOCOL.md section 1). */
export const USER_ID_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;

export function isValidUserId(value: unknown): value is string {
  return typeof value === 'string' && USER_ID_PATTERN.test(value);
}
