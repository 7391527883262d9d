/* global location, history, URLSearchParams, requestAnimationFrame */
// The demo chat: one AgentSocketClient per tab, the same user in every tab of
// this browser (the user id lives in the URL hash and in localStorage).
//
// The conversation is drawn from `client.runs` (one RunSnapshot per run): on
// load the page fetches the user's recent runs (`fetchRuns`, GET /v1/runs),
// draws them, then connects and follows live; run_snapshot frames, replayed
// and live events all fold into the same snapshots, so a reload at any moment
// draws the same conversation. A run still `running` in an epoch the stream
// no longer has (server restart, lost data) says it was interrupted, and one
// with no news for a while says so: nothing spins forever.
import { AgentSocketClient } from '/sdk/client/index.js';
import { PublishPanel } from './publish-panel.js';
import { el, RunView } from './run-view.js';

const USER_KEY = 'agentsocket-demo:user';
const MAX_RUNS_ON_PAGE = 50;
const RUNS_ON_LOAD = 20;
/** A running run with no event for this long is shown as stalled (no spinner). */
const STALL_MS = 30_000;

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

/** Runs `render` and keeps the view pinned to the bottom unless the user scrolled up. */
function keepingScroll(render) {
  const pinned = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 80;
  render();
  $('empty').hidden = messages.childElementCount > 0;
  if (pinned) chat.scrollTop = chat.scrollHeight;
}

// ---- the session ----

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
  // Called on every (re)connect, before the token expires, and by fetchRuns.
  token: () => {
    const token = unusedToken;
    unusedToken = null;
    return token ?? fetchToken();
  },
  storage: sessionStorage,
  storageKey: `agentsocket-demo:cursor:${userId}`,
});

// For the browser console (and tests): the page's client.
window.agentsocketDemo = { client };

// ---- the conversation, drawn from client.runs ----

/** runId → its RunView. Bounded: the oldest runs leave the page. */
const views = new Map();
/** runId → when this page last heard of the run (Date.now()), for the stall check. */
const lastHeard = new Map();
const pending = new Set();
let frameRequested = false;

/** How the page judges a run now (see RunView.draw). */
function runState(run) {
  if (run.status !== 'running') return run.status;
  const epoch = client.cursor?.epoch;
  // Seqs of another epoch mean nothing any more: the run can never go on.
  if (epoch && run.epoch !== epoch) return 'interrupted';
  if (client.state !== 'open') return client.state === 'closed' ? 'interrupted' : 'waiting';
  return Date.now() - (lastHeard.get(run.runId) ?? 0) > STALL_MS ? 'stalled' : 'running';
}

function placeRun(view) {
  // In start order: before the first run on the page that started later.
  const after = [...views.values()].find(
    (other) => other !== view && other.root.isConnected && other.startedAt > view.startedAt,
  );
  messages.insertBefore(view.root, after ? after.root : null);
}

function drawRun(run) {
  let view = views.get(run.runId);
  const isNew = !view;
  if (isNew) {
    view = new RunView(run.runId);
    views.set(run.runId, view);
  }
  const state = runState(run);
  const quiet = Math.round((Date.now() - (lastHeard.get(run.runId) ?? 0)) / 1000);
  view.draw(run, state, quiet);
  if (isNew) {
    placeRun(view);
    if (views.size > MAX_RUNS_ON_PAGE) {
      const oldest = [...views.values()].sort((a, b) => a.startedAt - b.startedAt)[0];
      oldest.root.remove();
      views.delete(oldest.root.dataset.runId);
    }
  }
}

/** Draws the runs waiting to be drawn, now. */
function drawPending() {
  keepingScroll(() => {
    for (const id of pending) {
      const run = client.runs.get(id);
      if (run) drawRun(run);
    }
  });
  pending.clear();
}

/** Draws the runs that changed, once per animation frame (deltas come fast). */
function scheduleDraw(runId) {
  pending.add(runId);
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(() => {
    frameRequested = false;
    drawPending();
  });
}

function redrawAll() {
  for (const runId of client.runs.keys()) scheduleDraw(runId);
}

client.on('run', (run) => {
  lastHeard.set(run.runId, Date.now());
  scheduleDraw(run.runId);
});
// Running runs go stalled, and connection changes change every running run's line.
setInterval(() => {
  for (const run of client.runs.values()) if (run.status === 'running') scheduleDraw(run.runId);
}, 5000);

// ---- what is not a run: tokens, custom events, broadcasts ----

const panel = new PublishPanel(document.body, userId, sessionStorage);
fetch('/demo/config')
  .then((res) => res.json())
  .then((config) => panel.showCurls(location.origin, config.publishApiKey ?? null))
  .catch(() => panel.showCurls(location.origin, null));

const RUN_EVENTS = new Set([
  'agent_started',
  'agent_thinking',
  'agent_text',
  'tool_executing',
  'tool_completed',
  'agent_completed',
]);
client.on('event', (event) => {
  if (!RUN_EVENTS.has(event.event)) panel.add(event, 'event');
  showCursor();
});
client.on('broadcast', (frame) => panel.add(frame, 'broadcast'));

// ---- the connection ----

client.on('state', ({ state }) => {
  statusPill.textContent = state;
  statusPill.dataset.state = state;
  redrawAll();
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
  redrawAll();
});
client.on('gap', (gap) => {
  // A note only when something of a run is really gone: a run's snapshot covers its own gap.
  keepingScroll(() =>
    messages.append(
      el(
        'div',
        { class: 'system-note warn', 'data-testid': 'gap' },
        gap.newEpoch
          ? 'The event stream was reset: runs that were going on were interrupted.'
          : `Some events were missed (history resumes at seq ${gap.from}).`,
      ),
    ),
  );
  redrawAll();
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

// ---- start: the recent runs first, then live ----

try {
  // Fetched before connecting: the replay that follows folds onto these snapshots.
  for (const run of await client.fetchRuns({ limit: RUNS_ON_LOAD })) {
    lastHeard.set(run.runId, run.updatedAt);
  }
} catch (error) {
  showNotice(`Could not load the recent runs: ${error.message}`);
}
redrawAll();
drawPending();
document.body.dataset.loaded = 'true';
client.connect().catch((error) => showNotice(error.message));
