/* global AbortSignal -- Node 20 has it; the shared eslint globals list does not. */
/**
 * The agents of a soak run: each user has an agent that publishes runs
 * (agent_started, agent_thinking…, tool_executing, tool_completed,
 * agent_completed) over the HTTP API, to a random node each time, at a
 * steady overall rate. Every event carries a unique `id` and the user's
 * publish counter `n` in `data`, so the checker can tell lost, duplicated
 * and reordered events apart.
 *
 * One publish per user is in flight at a time, so the per-user order of the
 * counters is the order the gateway must keep. A publish answered 503, by
 * an error slot of a batch, or not answered at all (connection refused or
 * reset, timeout) is sent again, to another random node, with the same id:
 * the gateway's idempotency makes a retry of an event that was in fact
 * stored return its first seq. An event is *confirmed* once an answer names
 * its seq; one still unanswered when the drain deadline passes is
 * *unconfirmed*, and the checker does not count it as lost (nobody was told
 * it was stored) but reports it.
 */

const REQUEST_TIMEOUT_MS = 10_000;
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 2_000;
/** Share of publishes sent through `POST /v1/events` (one event per user per batch). */
const BATCH_SHARE = 0.3;
const BATCH_MAX_USERS = 10;
const TICK_MS = 50;

/** The next event of a user's current run, as a publish body (without `id`). */
function nextRunEvent(user) {
  const run = user.run;
  const n = user.nextCounter;
  const runId = `${user.id}-r${run.number}`;
  switch (run.step) {
    case 0:
      run.step = 1;
      run.thinking = 1 + Math.floor(Math.random() * 4);
      return { event: 'agent_started', runId, data: { agent: 'soak', n } };
    case 1:
      if (--run.thinking <= 0) run.step = 2;
      return { event: 'agent_thinking', runId, data: { text: `thought ${n}`, n } };
    case 2:
      run.step = 3;
      return {
        event: 'tool_executing',
        runId,
        data: { toolCallId: `t${n}`, tool: 'search', args: { q: n }, n },
      };
    case 3:
      run.step = 4;
      return {
        event: 'tool_completed',
        runId,
        data: { toolCallId: `t${n - 1}`, tool: 'search', result: 'ok', n },
      };
    default:
      user.run = { number: run.number + 1, step: 0, thinking: 0 };
      return { event: 'agent_completed', runId, data: { status: 'succeeded', n } };
  }
}

export class SoakPublisher {
  /**
   * @param {object} options
   * @param {object[]} options.users SoakUser records (id, run, nextCounter, confirmed, …)
   * @param {() => {url: string}} options.pickNode a node, chosen at random
   * @param {string} options.apiKey
   * @param {number} options.rate events per second, all users together
   */
  constructor({ users, pickNode, apiKey, rate }) {
    this.users = users;
    this.pickNode = pickNode;
    this.apiKey = apiKey;
    this.rate = rate;
    this.timer = undefined;
    this.startedAt = 0;
    this.issued = 0;
    this.inFlight = new Set();
    /** Set when the drain deadline passed: retries stop, what is in flight stays unconfirmed. */
    this.stopped = false;
    this.counts = {
      requests: 0,
      batches: 0,
      retried: 0,
      unavailable: 0,
      connectionErrors: 0,
      timeouts: 0,
      itemErrors: 0,
      duplicateAnswers: 0,
      unexpected: 0,
    };
    /** The first few unexpected answers (not 202/503), for the report. */
    this.unexpected = [];
  }

  start() {
    this.startedAt = Date.now();
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  /** Stops issuing new events; publishes in flight keep retrying until `drain` ends. */
  stopIssuing() {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Resolves when every issued event got an answer, or at the deadline. */
  async drain(deadline) {
    while (this.inFlight.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    this.stopped = true;
    return this.inFlight.size;
  }

  tick() {
    const due = Math.floor(((Date.now() - this.startedAt) / 1000) * this.rate) - this.issued;
    if (due <= 0) return;
    const idle = this.users.filter((user) => !user.busy);
    // Random idle users, at most `due` of them.
    for (let i = idle.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [idle[i], idle[j]] = [idle[j], idle[i]];
    }
    const chosen = idle.slice(0, due);
    // Users with an event in flight are skipped: the shortfall is made up later.
    this.issued += chosen.length;
    while (chosen.length > 0) {
      const size =
        Math.random() < BATCH_SHARE
          ? Math.min(chosen.length, 2 + Math.floor(Math.random() * (BATCH_MAX_USERS - 1)))
          : 1;
      const items = chosen.splice(0, size).map((user) => this.issue(user));
      void this.send(items);
    }
  }

  /** Takes the user's next event: the user is busy until it is confirmed. */
  issue(user) {
    const body = nextRunEvent(user);
    const n = user.nextCounter++;
    const item = { user, n, body: { ...body, id: `${user.id}-n${n}` }, attempts: 0 };
    user.busy = true;
    user.issued.push(n);
    this.inFlight.add(item);
    return item;
  }

  async send(items) {
    let pending = items;
    while (pending.length > 0 && !this.stopped) {
      pending = await this.attempt(pending);
      if (pending.length === 0) break;
      this.counts.retried += pending.length;
      const attempts = Math.max(...pending.map((item) => item.attempts));
      const ceiling = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** attempts);
      await new Promise((resolve) => setTimeout(resolve, ceiling / 2 + Math.random() * ceiling));
    }
  }

  /** One request for `items`; resolves with the items to send again. */
  async attempt(items) {
    for (const item of items) item.attempts++;
    const node = this.pickNode();
    const single = items.length === 1;
    const path = single ? `/v1/users/${items[0].user.id}/events` : '/v1/events';
    const body = single
      ? items[0].body
      : { events: items.map((item) => ({ userId: item.user.id, ...item.body })) };
    this.counts.requests++;
    if (!single) this.counts.batches++;
    let response;
    try {
      response = await fetch(`${node.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      if (error?.name === 'TimeoutError') this.counts.timeouts++;
      else this.counts.connectionErrors++;
      return items;
    }
    let answer;
    try {
      answer = await response.json();
    } catch {
      this.counts.connectionErrors++;
      return items;
    }
    if (response.status === 503) {
      this.counts.unavailable++;
      return items;
    }
    if (response.status !== 202) {
      this.counts.unexpected++;
      if (this.unexpected.length < 5) {
        this.unexpected.push({ status: response.status, path, answer });
      }
      // A 4xx will not get better: the event is given up (and fails the run).
      for (const item of items) this.settle(item, null);
      return [];
    }
    const results = single ? [answer] : answer.results;
    const retry = [];
    items.forEach((item, i) => {
      const result = results[i];
      if (result === undefined || result.error !== undefined) {
        this.counts.itemErrors++;
        retry.push(item);
      } else {
        if (result.duplicate) this.counts.duplicateAnswers++;
        this.settle(item, result);
      }
    });
    return retry;
  }

  settle(item, result) {
    this.inFlight.delete(item);
    item.user.busy = false;
    if (result === null) item.user.refused.push(item.n);
    else item.user.confirmed.set(item.n, { seq: result.seq, epoch: result.epoch });
  }
}
