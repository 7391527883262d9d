// One run on the page, drawn from its RunSnapshot (client.runs): the user's
// prompt (`input` of agent_started), then its parts in order (reasoning, tool
// calls, the streamed answer), then a status line. Drawing is keyed by part
// id and only touches what changed, so a reasoning block or a tool card the
// user opened or closed stays so while deltas stream in, and drawing the same
// snapshot twice changes nothing: a reload shows the same conversation.

/** The run's line under its parts, by what the page knows of it. */
export const RUN_STATUS_TEXT = {
  running: (run) => `${run.agent || 'agent'} is working…`,
  waiting: () => 'Waiting for the connection…',
  interrupted: () =>
    'Interrupted: the event stream was reset before this run finished (server restart or lost data).',
  stalled: (_run, seconds) => `No news from the agent for ${seconds} s: it may have stopped.`,
  succeeded: () => '',
  failed: (run) => `Run failed${run.completed?.error ? `: ${pretty(run.completed.error)}` : ''}`,
  cancelled: () => 'Run cancelled',
};

export function pretty(value) {
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
}

export function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function partKey(part) {
  return part.kind === 'tool' ? `tool:${part.toolCallId}` : `${part.kind}:${part.id}`;
}

function newPart(part) {
  if (part.kind === 'reasoning') {
    const node = el('details', { class: 'thinking', 'data-testid': 'part-reasoning' });
    node.open = true;
    node.append(el('summary', {}, 'Thinking…'), el('div', { class: 'thinking-text' }));
    return node;
  }
  if (part.kind === 'text') {
    return el('div', { class: 'answer-text', 'data-testid': 'part-text' });
  }
  const node = el('details', { class: 'tool-card', 'data-testid': 'part-tool' });
  node.open = true;
  const head = el('summary', { class: 'tool-head' });
  head.append(
    el('span', { class: 'tool-icon', 'aria-hidden': 'true' }, '⚙'),
    el('span', { class: 'tool-name' }),
    el('span', { class: 'tool-badge' }),
  );
  node.append(
    head,
    el('div', { class: 'tool-label' }, 'Arguments'),
    el('pre', { class: 'tool-args' }),
    el('div', { class: 'tool-result' }),
  );
  return node;
}

/** `live`: the run may still go on (a running tool call spins only then). */
function drawPart(node, part, live) {
  if (part.kind === 'reasoning') {
    setText(node.querySelector('.thinking-text'), part.text);
    // An interrupted run is not thinking any more, even if its reasoning never closed.
    setText(node.querySelector('summary'), part.open && live ? 'Thinking…' : 'Thought');
    // Closes once when the reasoning ends; the user may open it again.
    if (!part.open && node.dataset.closed !== 'true') {
      node.dataset.closed = 'true';
      node.open = false;
    }
    return;
  }
  if (part.kind === 'text') {
    setText(node, part.text);
    node.classList.toggle('streaming', part.open && live);
    return;
  }
  node.classList.toggle('running', part.status === 'running' && live);
  node.dataset.status = part.status;
  setText(node.querySelector('.tool-name'), part.tool);
  const took = part.durationMs !== undefined ? ` · ${part.durationMs} ms` : '';
  const badge =
    part.status === 'running'
      ? live
        ? 'running'
        : 'not finished'
      : `${part.status === 'failed' ? 'failed' : 'done'}${took}`;
  setText(node.querySelector('.tool-badge'), badge);
  setText(node.querySelector('.tool-args'), pretty(part.args));
  const result = node.querySelector('.tool-result');
  if (part.status !== 'running' && result.childElementCount === 0) {
    const failed = part.status === 'failed';
    result.classList.toggle('failed', failed);
    result.append(
      el('div', { class: 'tool-label' }, failed ? 'Error' : 'Result'),
      el('pre', {}, pretty(failed ? part.error : (part.result ?? null))),
    );
    // An error stays in view; a result is one click away.
    if (!failed) node.open = false;
  }
}

/** The elements of one run on the page; `draw` brings them to a snapshot. */
export class RunView {
  constructor(runId) {
    this.root = el('article', { class: 'run', 'data-testid': 'run', 'data-run-id': runId });
    this.prompt = el('div', { class: 'bubble user', 'data-testid': 'prompt-bubble' });
    const assistant = el('div', { class: 'assistant' });
    this.body = el('div', { class: 'assistant-body' });
    this.status = el('div', { class: 'run-status', 'data-testid': 'run-status' });
    assistant.append(el('div', { class: 'avatar', 'aria-hidden': 'true' }, '◆'), this.body);
    this.root.append(this.prompt, assistant);
    this.body.append(this.status);
    /** part key → its element */
    this.parts = new Map();
    this.startedAt = 0;
  }

  /**
   * Draws `run` with `state` its status as the page judges it (`running`,
   * `waiting`, `interrupted`, `stalled`, or the run's final status).
   */
  draw(run, state, stalledSeconds = 0) {
    this.startedAt = run.startedAt;
    // No agent: the run was folded without its start (neither history nor a snapshot had it).
    const missed = run.agent === '' && run.input === undefined;
    setText(this.prompt, missed ? '(the start of this run was missed)' : pretty(run.input ?? ''));
    this.prompt.classList.toggle('missing', missed);
    const seen = new Set();
    for (const part of run.parts) {
      const key = partKey(part);
      seen.add(key);
      let node = this.parts.get(key);
      if (!node) {
        node = newPart(part);
        node.dataset.partKey = key;
        this.parts.set(key, node);
        this.body.insertBefore(node, this.status);
      }
      drawPart(node, part, state === 'running');
    }
    // Parts a truncated snapshot no longer holds leave the page.
    for (const [key, node] of this.parts) {
      if (!seen.has(key)) {
        node.remove();
        this.parts.delete(key);
      }
    }
    this.root.dataset.status = state;
    this.status.dataset.status = state;
    setText(this.status, RUN_STATUS_TEXT[state](run, stalledSeconds));
    const open = run.completed?.openToolCalls;
    if (open?.length) this.status.textContent += ` (tool calls left open: ${open.join(', ')})`;
    this.status.hidden = this.status.textContent === '';
  }
}
