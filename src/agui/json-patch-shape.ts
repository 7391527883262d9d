/**
 * Whether a JSON value is an RFC 6902 patch in the shape AG-UI's STATE_DELTA
 * schema accepts. A malformed known field is fatal in the AG-UI client, so a
 * `state_delta` whose data fails this check goes out as CUSTOM instead.
 */
import type { JsonPatchOperation } from '@ag-ui/core';
import type { JsonValue } from '../protocol/frames.js';

/** RFC 6901, as @ag-ui/core's JsonPointerSchema spells it. */
const JSON_POINTER = /^(\/([^/~]|~[01])*)*$/;

/** Which members each operation requires besides `op` and `path`. */
const REQUIRED_MEMBERS: Readonly<Record<string, readonly ('value' | 'from')[]>> = {
  add: ['value'],
  remove: [],
  replace: ['value'],
  move: ['from'],
  copy: ['from'],
  test: ['value'],
};

export function isJsonPatch(data: JsonValue): data is JsonValue[] & JsonPatchOperation[] {
  return Array.isArray(data) && data.every(isOperation);
}

function isOperation(item: JsonValue): boolean {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) return false;
  const { op, path } = item;
  if (typeof op !== 'string' || !Object.hasOwn(REQUIRED_MEMBERS, op)) return false;
  if (typeof path !== 'string' || !JSON_POINTER.test(path)) return false;
  return (REQUIRED_MEMBERS[op] ?? []).every((member) =>
    member === 'from'
      ? typeof item.from === 'string' && JSON_POINTER.test(item.from)
      : item.value !== undefined,
  );
}
