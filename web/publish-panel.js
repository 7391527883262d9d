// "Publish to this page": the exact curl that sends an event to this page's
// user through the HTTP API (with the API key `npm start` printed, which the
// dev server hands the page), and a feed of what arrives that is not part of
// a run's conversation: `token` events (consecutive tokens of one run joined
// into one line), custom events and broadcasts. The feed is kept in
// sessionStorage (bounded), so a reload shows the same feed.
import { el, pretty } from './run-view.js';

const MAX_FEED_ITEMS = 50;
const KEY_PLACEHOLDER = '$AGENTSOCKET_API_KEY';

/** Quotes `text` for a POSIX shell: single quotes, with `'` written as `'\''`. */
function shellQuote(text) {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

/** The curl that publishes `body` to `userId` on the gateway at `origin`. */
export function publishCurl(origin, userId, apiKey, body) {
  const url = `${origin}/v1/users/${encodeURIComponent(userId)}/events`;
  return [
    `curl -X POST ${shellQuote(url)}`,
    `  -H ${shellQuote(`Authorization: Bearer ${apiKey ?? KEY_PLACEHOLDER}`)}`,
    "  -H 'Content-Type: application/json'",
    `  -d ${shellQuote(JSON.stringify(body))}`,
  ].join(' \\\n');
}

/** What a token event carries: `data.t` (the examples' tokens), `data.text`, or the data itself. */
function tokenText(data) {
  if (typeof data === 'string') return data;
  if (typeof data?.t === 'string') return data.t;
  if (typeof data?.text === 'string') return data.text;
  return pretty(data);
}

export class PublishPanel {
  /**
   * @param {HTMLElement} root where the curl blocks and the feed are
   * @param {string} userId
   */
  constructor(root, userId, storage) {
    this.root = root;
    this.userId = userId;
    this.storage = storage;
    this.storageKey = `agentsocket-demo:feed:${userId}`;
    this.feed = root.querySelector('[data-testid=feed]');
    /** The feed as data, oldest first: {kind, seq, event, runId, text}. */
    this.items = [];
    try {
      this.items = JSON.parse(storage.getItem(this.storageKey) ?? '[]');
    } catch {
      this.items = [];
    }
    for (const item of this.items) this.feed.append(this.#node(item));
    this.#showFeed();
  }

  /** Shows the curls, with the API key when the dev server gave one. */
  showCurls(origin, apiKey) {
    const examples = {
      'curl-token': { event: 'token', data: { t: 'Hello from curl ' } },
      'curl-custom': { event: 'order.shipped', data: { orderId: 'A-1001', items: 2 } },
    };
    for (const [testId, body] of Object.entries(examples)) {
      this.root.querySelector(`[data-testid=${testId}]`).textContent = publishCurl(
        origin,
        this.userId,
        apiKey,
        body,
      );
    }
    this.root.querySelector('[data-testid=curl-key-note]').hidden = apiKey !== null;
  }

  #showFeed() {
    this.feed.closest('[data-testid=feed-section]').hidden = this.items.length === 0;
  }

  /** An event that is not an agent event, or a broadcast (seq null). */
  add(frame, kind) {
    const last = this.items.at(-1);
    if (
      kind === 'event' &&
      frame.event === 'token' &&
      last?.event === 'token' &&
      last.runId === (frame.runId ?? null)
    ) {
      last.text += tokenText(frame.data);
      last.seq = frame.seq;
      const node = this.feed.lastElementChild;
      node.querySelector('.feed-text').textContent = last.text;
      node.dataset.seq = String(frame.seq);
    } else {
      const item = {
        kind,
        seq: frame.seq ?? null,
        event: frame.event,
        runId: frame.runId ?? null,
        text: frame.event === 'token' ? tokenText(frame.data) : pretty(frame.data),
      };
      this.items.push(item);
      this.feed.append(this.#node(item));
      while (this.items.length > MAX_FEED_ITEMS) {
        this.items.shift();
        this.feed.firstElementChild.remove();
      }
    }
    this.#showFeed();
    try {
      this.storage.setItem(this.storageKey, JSON.stringify(this.items));
    } catch {
      // A full storage only costs the feed after a reload.
    }
  }

  #node(item) {
    const node = el('li', {
      class: `feed-item ${item.kind}`,
      'data-testid': item.event === 'token' ? 'feed-tokens' : `feed-${item.kind}`,
      'data-event': item.event,
    });
    if (item.seq !== null) node.dataset.seq = String(item.seq);
    const head = item.runId ? `${item.event} · ${item.runId}` : item.event;
    node.append(
      el('div', { class: 'feed-head' }, head),
      el('pre', { class: 'feed-text' }, item.text),
    );
    return node;
  }
}
