/**
 * The key and channel layout of the Redis engine (documented in docs/redis.md).
 * Every key of one user carries the Redis Cluster hash tag `{u:<userId>}`, so
 * a user's keys share one slot and one Lua script can touch them all. User ids
 * are `[A-Za-z0-9._:@-]`: they never contain `{` or `}`, so the tag is exact.
 */

/**
 * What each key (and the channel) of a user adds to `<prefix>:{u:<userId>}`.
 * The publish script is given only the meta key of each event and derives
 * the others from it with these (`publish-script.ts`).
 */
export const USER_KEY_SUFFIX = {
  meta: ':meta',
  hist: ':hist',
  ids: ':ids',
  conns: ':conns',
  events: ':events',
  runs: ':runs',
  /** A run's keys: `<base>:run:<runId>:state` and `…:log`. */
  run: ':run:',
} as const;

export class RedisKeys {
  /** Broadcast frames, for every node. */
  readonly broadcast: string;
  /** Operator commands (`ControlMessage`), for every node. */
  readonly control: string;
  /** Each node's connection count (a hash: node id -> `deadline\ncount`). */
  readonly nodeLoads: string;
  private readonly userChannelPrefix: string;
  private readonly userChannelSuffix = `}${USER_KEY_SUFFIX.events}`;

  constructor(readonly prefix: string) {
    this.broadcast = `${prefix}:broadcast`;
    this.control = `${prefix}:control`;
    this.nodeLoads = `${prefix}:nodes`;
    this.userChannelPrefix = `${prefix}:{u:`;
  }

  /** The user's meta key (the publish script's one key per event). */
  meta(userId: string): string {
    return `${this.userBase(userId)}${USER_KEY_SUFFIX.meta}`;
  }

  /** meta, hist, ids: the KEYS of the user's scripts, in that order. */
  user(userId: string): [meta: string, hist: string, ids: string] {
    const base = this.userBase(userId);
    return [this.meta(userId), `${base}${USER_KEY_SUFFIX.hist}`, `${base}${USER_KEY_SUFFIX.ids}`];
  }

  /**
   * A run's keys: its grammar state (a string), its log (a list: a
   * checkpoint, then the events folded after it) and the user's runs (a
   * sorted set: run id -> ts of its last event). With `runId` '' (an event
   * outside any run) the three are never touched but keep the script's KEYS fixed.
   */
  run(userId: string, runId: string): [state: string, log: string, runs: string] {
    const base = this.runKeyBase(userId);
    return [
      `${base}${runId}:state`,
      `${base}${runId}:log`,
      `${this.userBase(userId)}${USER_KEY_SUFFIX.runs}`,
    ];
  }

  /** What a run's keys start with (the script deletes evicted runs' keys by name). */
  runKeyBase(userId: string): string {
    return `${this.userBase(userId)}${USER_KEY_SUFFIX.run}`;
  }

  /** The directory of the user's connections on every node (a hash: connection id -> record). */
  connections(userId: string): string {
    return `${this.userBase(userId)}${USER_KEY_SUFFIX.conns}`;
  }

  /** The channel a user's live events are published on. */
  userChannel(userId: string): string {
    return `${this.userChannelPrefix}${userId}${this.userChannelSuffix}`;
  }

  /** The user of a channel from `userChannel`, or undefined for any other channel. */
  userOfChannel(channel: string): string | undefined {
    if (!channel.startsWith(this.userChannelPrefix) || !channel.endsWith(this.userChannelSuffix)) {
      return undefined;
    }
    return channel.slice(this.userChannelPrefix.length, -this.userChannelSuffix.length);
  }

  /** What every key of the user starts with: `<prefix>:{u:<userId>}`. */
  private userBase(userId: string): string {
    return `${this.prefix}:{u:${userId}}`;
  }

  /** The channel delivery reports addressed to `nodeId` arrive on. */
  nodeChannel(nodeId: string): string {
    return `${this.prefix}:node:${nodeId}`;
  }

  /** A ticket's key: a hash of the ticket, so the ticket itself is never a key name. */
  ticket(ticketHash: string): string {
    return `${this.prefix}:ticket:${ticketHash}`;
  }
}
