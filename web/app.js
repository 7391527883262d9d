/* global location, history, URLSearchParams */
// The demo chat: one AgentSocketClient per tab, the same user in every tab of
// this browser (the user id lives in the URL hash and in localStorage). Every
// event renders exactly one element with `data-seq` and a `data-testid` of
// `step-<event>`, so a browser test can check order and the absence of
// duplicates (within a run, steps appear in increasing seq).
import { AgentSocketClient } from '/sdk/client/index.js';

const USER_KEY = 'agentsocket-demo:user';

const $ = (id) => document.getElementById(id);
const messages = $('messages');
const chat = $('chat');
const statusPill = $('status');
const promptInput = $('prompt');
const sendButton = $('send');

/** The user of this tab: `#user=<id>` first, then the one this browser used last. */
let userId =
  new URLSearchParams(location.hash.slice(1)).get('user') || localStorage.getItem(USER_KEY);

async function postJson(path, body) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(json?.error?.message ?? `HTTP ${res.status}`);
  return json;
}

/** Asks the demo backend for a token (a real app gets it from its own login). */
async function fetchToken() {
  const session = await postJson('/demo/session', userId ? { userId } : {});
  userId = session.userId;
  localStorage.setItem(USER_KEY, userId);
  history.replaceState(null, '', `#user=${encodeURIComponent(userId)}`);
  return session.token;
}

function showNotice(text) {
  $('notice').textContent = text;
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function pretty(value) {
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
}

// ---- one run on screen ----

/** runId → the elements of its run. Bounded: the oldest runs leave the page. */
const runs = new Map();
const MAX_RUNS_ON_PAGE = 50;

function runView(runId) {
  let view = runs.get(runId);
  if (view) return view;
  const root = el('article', { class: 'run', 'data-testid': 'run', 'data-run-id': runId });
  const assistant = el('div', { class: 'assistant' });
  const body = el('div', { class: 'assistant-body' });
  const status = el('div', { class: 'run-status' }, 'Working…');
  body.append(status);
  assistant.append(el('div', { class: 'avatar', 'aria-hidden': 'true' }, '◆'), body);
  root.append(assistant);
  messages.append(root);
  $('empty').hidden = true;
  view = { root, body, status, thinking: null, tools: new Map(), startedAt: Date.now() };
  runs.set(runId, view);
  if (runs.size > MAX_RUNS_ON_PAGE) {
    const [oldestId, oldest] = runs.entries().next().value;
    oldest.root.remove();
    runs.delete(oldestId);
  }
  return view;
}

/** Adds a step to the run, before its "Working…" line while the run is going. */
function addStep(view, node) {
  view.body.insertBefore(node, view.status.parentNode === view.body ? view.status : null);
  return node;
}

function step(event, tag, cls, text) {
  return el(tag, { class: cls, 'data-seq': event.seq, 'data-testid': `step-${event.event}` }, text);
}

function renderStarted(event) {
  const view = runView(event.runId);
  const bubble = step(event, 'div', 'bubble user', pretty(event.data?.input ?? ''));
  view.root.insertBefore(bubble, view.root.firstChild);
  view.status.textContent = `${event.data?.agent ?? 'agent'} is working…`;
}

function renderThinking(event) {
  const view = runView(event.runId);
  // Consecutive deltas share one block; a delta after a tool call opens a new one.
  if (!view.thinking || view.thinking.block.nextElementSibling !== view.status) {
    const block = el('details', { class: 'thinking', open: '' });
    const summary = el('summary', {}, 'Thinking…');
    const text = el('div', { class: 'thinking-text' });
    block.append(summary, text);
    addStep(view, block);
    view.thinking = { block, text };
  }
  view.thinking.text.append(step(event, 'span', 'delta', event.data?.text ?? ''));
}

function renderToolExecuting(event) {
  const view = runView(event.runId);
  const { toolCallId, tool, args } = event.data ?? {};
  // A disclosure, open while the tool runs; a finished call folds to its one-line head.
  const card = step(event, 'details', 'tool-card running');
  card.open = true;
  card.dataset.toolCallId = toolCallId;
  const head = el('summary', { class: 'tool-head' });
  const badge = el('span', { class: 'tool-badge' }, 'running');
  head.append(
    el('span', { class: 'tool-icon', 'aria-hidden': 'true' }, '⚙'),
    el('span', { class: 'tool-name' }, tool),
    badge,
  );
  card.append(head, el('div', { class: 'tool-label' }, 'Arguments'), el('pre', {}, pretty(args)));
  view.tools.set(toolCallId, { card, badge });
  addStep(view, card);
}

function renderToolCompleted(event) {
  const view = runView(event.runId);
  const { toolCallId, result, error, durationMs } = event.data ?? {};
  const failed = error !== undefined;
  const part = step(event, 'div', failed ? 'tool-result failed' : 'tool-result');
  part.append(
    el('div', { class: 'tool-label' }, failed ? 'Error' : 'Result'),
    el('pre', {}, pretty(failed ? error : (result ?? null))),
  );
  const known = view.tools.get(toolCallId);
  if (!known) {
    addStep(view, part);
    return;
  }
  known.card.classList.remove('running');
  const took = durationMs !== undefined ? ` · ${durationMs} ms` : '';
  known.badge.textContent = `${failed ? 'failed' : 'done'}${took}`;
  known.card.append(part);
  // An error stays in view; a result is one click away.
  if (!failed) known.card.open = false;
}

function renderCompleted(event) {
  const view = runView(event.runId);
  const { status, result, error } = event.data ?? {};
  const answer = result?.text ?? (result !== undefined ? pretty(result) : '');
  const bubble = step(event, 'div', `answer ${status}`);
  if (answer) bubble.append(el('p', {}, answer));
  if (status !== 'succeeded') {
    bubble.append(el('p', { class: 'muted' }, `Run ${status}${error ? `: ${pretty(error)}` : ''}`));
  }
  view.status.remove();
  view.body.append(bubble);
  const seconds = Math.max(1, Math.round((Date.now() - view.startedAt) / 1000));
  for (const block of view.body.querySelectorAll('details.thinking')) {
    block.open = false;
    block.querySelector('summary').textContent = `Thought for ${seconds} s`;
  }
}

function renderOther(event) {
  const note = step(event, 'div', 'system-note', `${event.event}: ${pretty(event.data)}`);
  if (event.runId) addStep(runView(event.runId), note);
  else messages.append(note);
}

/** Runs `render` and keeps the view pinned to the bottom unless the user scrolled up. */
function keepingScroll(render) {
  const pinned = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 80;
  render();
  $('empty').hidden = messages.childElementCount > 0;
  if (pinned) chat.scrollTop = chat.scrollHeight;
}

const renderers = {
  agent_started: renderStarted,
  agent_thinking: renderThinking,
  tool_executing: renderToolExecuting,
  tool_completed: renderToolCompleted,
  agent_completed: renderCompleted,
};

// ---- the connection ----

const firstToken = await fetchToken().catch((error) => {
  showNotice(`Could not start a session: ${error.message}`);
  throw error;
});
$('user-id').textContent = userId;
$('other-tab').href = `#user=${encodeURIComponent(userId)}`;
window.addEventListener('hashchange', () => {
  const next = new URLSearchParams(location.hash.slice(1)).get('user');
  if (next && next !== userId) location.reload();
});

let unusedToken = firstToken;
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`;
const client = new AgentSocketClient({
  url: wsUrl,
  // Called on every (re)connect and before the token expires.
  token: () => {
    const token = unusedToken;
    unusedToken = null;
    return token ?? fetchToken();
  },
  storage: sessionStorage,
  storageKey: `agentsocket-demo:cursor:${userId}`,
});

client.on('state', ({ state }) => {
  statusPill.textContent = state;
  statusPill.dataset.state = state;
});
function showCursor() {
  const cursor = client.cursor;
  const connection = client.welcome ? `connection ${client.welcome.connectionId} · ` : '';
  if (cursor)
    $('cursor').textContent = `${connection}seq ${cursor.lastSeq} · epoch ${cursor.epoch}`;
}
client.on('welcome', () => {
  showNotice('');
  showCursor();
});
client.on('event', (event) => {
  keepingScroll(() => {
    if (event.runId && !runs.has(event.runId) && event.event !== 'agent_started') {
      // Joined mid-run (or its start is older than the history): say so.
      const placeholder = el(
        'div',
        { class: 'bubble user missing' },
        '(the start of this run was missed)',
      );
      runView(event.runId).root.prepend(placeholder);
    }
    // Own keys only: `renderers.constructor` (an event named "constructor") is Object's.
    (Object.hasOwn(renderers, event.event) ? renderers[event.event] : renderOther)(event);
  });
  showCursor();
});
client.on('gap', (gap) => {
  messages.append(
    el(
      'div',
      { class: 'system-note warn', 'data-testid': 'gap' },
      gap.newEpoch
        ? 'The event stream was reset; earlier events are gone.'
        : `Some events were missed (history resumes at seq ${gap.from}).`,
    ),
  );
});
client.on('broadcast', (frame) => {
  const note = `${frame.event}: ${pretty(frame.data)}`;
  keepingScroll(() =>
    messages.append(el('div', { class: 'system-note', 'data-testid': 'broadcast' }, note)),
  );
});
client.on('error', (error) => {
  console.warn('agentsocket:', error.kind, error.message);
});
client.on('closed', ({ code, reason }) => {
  showNotice(`Disconnected (${code}${reason ? `: ${reason}` : ''}). Reload to reconnect.`);
});

$('drop').addEventListener('click', () => client.reconnect());

// ---- the composer ----

promptInput.addEventListener('input', () => {
  sendButton.disabled = promptInput.value.trim().length === 0;
  promptInput.style.height = 'auto';
  promptInput.style.height = `${Math.min(promptInput.scrollHeight, 200)}px`;
});
promptInput.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $('composer').requestSubmit();
  }
});
$('composer').addEventListener('submit', async (event) => {
  event.preventDefault();
  const prompt = promptInput.value.trim();
  if (!prompt) return;
  sendButton.disabled = true;
  try {
    await postJson('/demo/run', { userId, prompt });
    promptInput.value = '';
    promptInput.style.height = 'auto';
  } catch (error) {
    showNotice(`Could not start the run: ${error.message}`);
    sendButton.disabled = false;
  }
  promptInput.focus();
});

client.connect().catch((error) => showNotice(error.message));
