/**
 * The answer to a publish (`PublishResult`), made by a constructor rather
 * than an object literal, on purpose.
 *
 * V8 pretenures by allocation site, and only literals (and `new Array`)
 * have one: when nearly all of a literal's objects are still alive at a
 * scavenge, as the answers of a burst are while the publisher awaits them
 * all (`Promise.all` over a round of 2,000 publishes), V8 decides, for good,
 * to allocate every later object of that literal in the old generation. An
 * answer born old holds the event's `id`, a string born young; the old
 * answer dies at once but only a mark-compact can free it, and until then its
 * field is a root of every scavenge. So every event's id survived two
 * scavenges and was promoted: 600-700 KB a scavenge at 20,000 events a
 * second, 3-9 ms pauses instead of about 1, in about half the runs
 * (docs/performance.md, "Promotion: a pretenured publish answer"). An object made by
 * `new` has no allocation site: it is always born young and dies there.
 */
import type { PublishResult } from './gateway-types.js';

export class PublishAnswer implements PublishResult {
  /** Set only when a run's end left tool calls open: absent otherwise, as before. */
  declare openToolCalls?: string[];

  constructor(
    public seq: number,
    public epoch: string,
    public id: string,
    public delivered: number,
    public duplicate: boolean,
  ) {}
}
