/**
 * The ids of a run's reasoning and text parts: one rule for the run
 * snapshot's fold (`ReasoningPart.id`, `TextPart.id`) and the AG-UI mapping,
 * so a live stream, a resumed one and a snapshot name every part alike.
 * Derived from seqs and the publisher's ids only. Pure, browser-safe.
 */

/** The id of a reasoning part: `r<seq>` of its first delta (the `seqFrom` of a merged frame). */
export function reasoningPartId(firstSeq: number): string {
  return `r${firstSeq}`;
}

/**
 * The id of a text part opened by a delta at `firstSeq`: `m<seq>` without a
 * `messageId`; the `messageId` the first time the run uses it; and
 * `<messageId>:<seq>` when a part of that `messageId` came before (the
 * message comes back after another kind of event), so part ids stay unique.
 */
export function textPartId(
  firstSeq: number,
  messageId: string | undefined,
  messageIdUsedBefore: boolean,
): string {
  if (messageId === undefined) return `m${firstSeq}`;
  return messageIdUsedBefore ? `${messageId}:${firstSeq}` : messageId;
}
