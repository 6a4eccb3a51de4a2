// The folder grid of LRP Lens (Explain All Images in Folder): one cell per image, filled as the
// host's results arrive (thumbnail with the heatmap blended in, top-1 label and score). Clicking a
// cell asks the host to open the image's full panel.
import {
  toUint8,
  type FolderHostMessage,
  type FolderItemResult,
  type FolderPersistedState,
  type FolderWebviewMessage,
  type PanelError,
} from '../src/protocol';
import { putRgb } from './canvas';
import { h, vscodeApi } from './dom';

const vscode = vscodeApi();

function send(msg: FolderWebviewMessage): void {
  vscode.postMessage(msg);
}


let runId = 0;
let files: string[] = [];

function app(): HTMLElement {
  return document.getElementById('app') as HTMLElement;
}

function cell(index: number): HTMLElement | null {
  return document.querySelector<HTMLElement>(`.cell[data-index="${index}"]`);
}

function build(folderName: string): void {
  const root = app();
  root.replaceChildren();
  const cancel = h('button', { id: 'cancel', type: 'button', class: 'secondary' }, 'Cancel');
  const rerun = h('button', { id: 'rerun', type: 'button', class: 'secondary', hidden: '' }, 'Run again');
  cancel.addEventListener('click', () => send({ type: 'cancel' }));
  rerun.addEventListener('click', () => send({ type: 'rerun' }));
  const index = h(
    'button',
    { id: 'index-concepts', type: 'button', class: 'secondary', title: 'Score every image by the relevance each channel of a layer carries, so explain panels show each channel\'s reference examples' },
    'Index Concepts…',
  );
  index.addEventListener('click', () => send({ type: 'indexConcepts' }));
  const indexCancel = h('button', { id: 'index-cancel', type: 'button', class: 'secondary', hidden: '' }, 'Cancel Indexing');
  indexCancel.addEventListener('click', () => send({ type: 'cancelIndex' }));
  root.append(
    h(
      'header',
      { class: 'header' },
      h('div', { class: 'title' }, h('span', { id: 'folder-name' }, `${folderName}/`), h('span', { id: 'model-name', class: 'muted' })),
      h('div', { class: 'actions' }, h('span', { id: 'status', class: 'muted', role: 'status', 'aria-live': 'polite' }), cancel, rerun, index),
    ),
    h(
      'div',
      { id: 'index-status', class: 'index-status', role: 'status', 'aria-live': 'polite', hidden: '' },
      h('progress', { id: 'index-progress', max: '1', value: '0' }),
      h('span', { id: 'index-message' }),
      indexCancel,
    ),
    h('progress', { id: 'progress', max: '1', value: '0' }),
    h('p', { id: 'message', class: 'message', hidden: '' }),
    h('div', { id: 'grid', class: 'grid', role: 'list' }),
  );
  const grid = document.getElementById('grid') as HTMLElement;
  files.forEach((file, index) => {
    const canvas = h('canvas', { class: 'thumb', width: '1', height: '1', 'aria-hidden': 'true' });
    const button = h(
      'button',
      { class: 'cell', type: 'button', role: 'listitem', 'data-index': String(index), 'data-state': 'pending', title: `${file}: open the full explanation` },
      h('div', { class: 'thumb-wrap' }, canvas, h('span', { class: 'spinner', 'aria-hidden': 'true' })),
      h('div', { class: 'name' }, file),
      h('div', { class: 'label' }, '…'),
      h('div', { class: 'score muted' }, ''),
    );
    button.addEventListener('click', () => send({ type: 'open', index }));
    grid.append(button);
  });
}

function drawThumb(canvas: HTMLCanvasElement, r: FolderItemResult): void {
  putRgb(canvas, { width: r.thumb.width, height: r.thumb.height, rgb: toUint8(r.thumb.rgb) });
}

function showItem(index: number, r: FolderItemResult): void {
  const el = cell(index);
  if (!el) return;
  drawThumb(el.querySelector('canvas') as HTMLCanvasElement, r);
  el.dataset.state = 'done';
  (el.querySelector('.label') as HTMLElement).textContent = r.label;
  (el.querySelector('.score') as HTMLElement).textContent = `${(r.score * 100).toFixed(1)} %`;
  el.title = `${files[index]}: ${r.label} (${(r.score * 100).toFixed(1)} %), class ${r.target}, relevance sum ${r.relevanceSum.toPrecision(4)}, ${r.timeMs.toFixed(0)} ms. Click for the full explanation.`;
}

function showItemError(index: number, error: PanelError): void {
  const el = cell(index);
  if (!el) return;
  el.dataset.state = 'error';
  (el.querySelector('.label') as HTMLElement).textContent = error.title;
  (el.querySelector('.score') as HTMLElement).textContent = '';
  el.title = `${files[index]}: ${error.message}`;
}

function showStatus(msg: FolderHostMessage & { type: 'status' }): void {
  const root = app();
  root.dataset.state = msg.state;
  const status = document.getElementById('status');
  const progress = document.getElementById('progress') as HTMLProgressElement | null;
  const message = document.getElementById('message');
  if (!status || !progress || !message) return;
  const failed = msg.failed ? `, ${msg.failed} failed` : '';
  const what: Record<typeof msg.state, string> = {
    starting: 'Starting…',
    running: `Explaining ${msg.done} of ${msg.total}${failed}`,
    done: `${msg.total} images explained${failed}`,
    cancelled: `Cancelled after ${msg.done} of ${msg.total}`,
    error: 'Failed',
  };
  status.textContent = what[msg.state];
  progress.max = Math.max(1, msg.total);
  progress.value = msg.done;
  progress.hidden = msg.state === 'done' || msg.state === 'error';
  message.hidden = !msg.message;
  message.textContent = msg.message ?? '';
  message.classList.toggle('error', msg.state === 'error');
  const model = document.getElementById('model-name');
  if (model && msg.model) model.textContent = msg.model.split(/[\\/]/).slice(-2).join('/');
  const running = msg.state === 'running' || msg.state === 'starting';
  (document.getElementById('cancel') as HTMLElement).hidden = !running;
  (document.getElementById('rerun') as HTMLElement).hidden = running;
  if (msg.state === 'cancelled' || msg.state === 'error')
    document.querySelectorAll<HTMLElement>('.cell[data-state="pending"]').forEach((el) => {
      el.dataset.state = 'skipped';
      (el.querySelector('.label') as HTMLElement).textContent = 'not explained';
    });
}

/** Concept indexing: its progress, outcome and Cancel. */
function showIndex(msg: FolderHostMessage & { type: 'indexStatus' }): void {
  const box = document.getElementById('index-status');
  const progress = document.getElementById('index-progress') as HTMLProgressElement | null;
  const text = document.getElementById('index-message');
  if (!box || !progress || !text) return;
  box.hidden = false;
  box.dataset.state = msg.state;
  text.textContent = msg.message;
  text.classList.toggle('error', msg.state === 'error');
  progress.hidden = msg.state !== 'running';
  progress.max = Math.max(1, msg.total ?? 1);
  progress.value = msg.done ?? 0;
  (document.getElementById('index-cancel') as HTMLElement).hidden = msg.state !== 'running';
  (document.getElementById('index-concepts') as HTMLButtonElement).disabled = msg.state === 'running';
}

window.addEventListener('message', (event: MessageEvent<FolderHostMessage>) => {
  const msg = event.data;
  if (!msg || typeof msg !== 'object') return;
  if (msg.type === 'indexStatus') {
    showIndex(msg);
    return;
  }
  if (msg.type === 'init') {
    runId = msg.runId;
    files = msg.files;
    vscode.setState({ folderPath: msg.folderPath } satisfies FolderPersistedState);
    build(msg.folderName);
    return;
  }
  if (msg.runId !== runId) return; // a replaced run
  if (msg.type === 'item') showItem(msg.index, msg.result);
  else if (msg.type === 'itemError') showItemError(msg.index, msg.error);
  else if (msg.type === 'status') showStatus(msg);
});

send({ type: 'ready' });
