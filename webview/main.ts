// The LRP Lens panel. Asks the host for its state ('ready'), draws the heatmap on a canvas from
// the relevance map (colormaps and blending in ./colormap), and sends the user's choices back.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import {
  COLORMAP_NAMES,
  COMPOSITES,
  DEFAULT_VIEW,
  HEATMAP_VIEWS,
  MAIN_METHODS,
  type CompareMethod,
  type MainMethod,
  type PanelTab,
  SIGN_MODES,
  toUint8,
  unpackMap,
  type ColormapName,
  type ErrorAction,
  type HeatmapView,
  type HostMessage,
  type PanelError,
  type PanelNotice,
  type PersistedState,
  type ResultPayload,
  type RuleChoice,
  type SignMode,
  type ViewOptions,
  type WebviewMessage,
} from '../src/protocol';
import {
  composeHeatmap,
  describeScale,
  formatValue,
  imageColumnAt,
  legendGradient,
  mapScale,
  sampleBilinear,
  type FloatMap,
  type RgbImage,
} from './colormap';
import { inputAt, photoView } from './input-view';
import { ruleFieldState } from './view';
import { CompareView, METHOD_HELP } from './compare';
import { h, select, vscodeApi, type SelectEl } from './dom';
import { attentionField, attentionValue, showTokens, tokenFlowNote } from './token-flow';
import { ConceptsView } from './concepts';
import { FlowView } from './flow';
import { putPixels } from './canvas';

const vscode = vscodeApi();

function send(msg: WebviewMessage): void {
  vscode.postMessage(msg);
}


function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el as T;
}

// ---------- state ----------

const state: {
  imagePath?: string;
  imageName?: string;
  view: ViewOptions;
  rules: RuleChoice;
  image?: RgbImage;
  /** The original photo's size (the display image may be smaller). */
  original?: { originalWidth: number; originalHeight: number };
  /** Show the model input (resized, cropped) instead of the photo. */
  modelView: boolean;
  result?: ResultPayload;
  relevance?: FloatMap;
  busy: boolean;
  /** Rules chosen in this panel, kept across reloads. */
  userRules?: Partial<RuleChoice>;
  tab: PanelTab;
  method: MainMethod;
} = {
  tab: 'explain',
  method: 'lrp',
  view: { ...DEFAULT_VIEW },
  rules: { composite: 'epsilon-plus-flat', epsilon: 1e-6, gamma: 0.25, attention: 'cp' },
  busy: false,
  modelView: false,
};

{
  const saved = vscode.getState() as PersistedState | undefined;
  if (saved?.view) state.view = { ...state.view, ...saved.view };
  if (saved?.imagePath) state.imagePath = saved.imagePath;
  if (saved?.rules) state.userRules = saved.rules;
  if (saved?.tab === 'compare' || saved?.tab === 'concepts') state.tab = saved.tab;
  if (saved?.method && (MAIN_METHODS as readonly string[]).includes(saved.method)) state.method = saved.method;
}

const compare = new CompareView({
  send,
  view: () => state.view,
  target: () => (state.result ? { index: state.result.target, label: state.result.targetLabel } : undefined),
  persist: () => persist(),
  openMethod: (m: CompareMethod) => {
    setTab('explain');
    const isComposite = (COMPOSITES as readonly string[]).includes(m);
    if (isComposite) {
      state.userRules = { ...state.rules, ...state.userRules, composite: m as RuleChoice['composite'] };
      state.method = 'lrp';
    } else state.method = m as MainMethod;
    persist();
    send({ type: 'openMethod', method: m, target: state.result?.target });
  },
});
const concepts = new ConceptsView({
  send,
  view: () => state.view,
  result: () => state.result,
  redrawMain: () => {
    drawHeatmap();
    updateLegend();
  },
  showExplain: () => setTab('explain'),
  persist: () => persist(),
});
{
  const saved = vscode.getState() as PersistedState | undefined;
  if (saved?.compareNorm === 'shared') compare.norm = 'shared';
  concepts.restore(saved);
}

/** The relevance flow and the layer detail (made with the layout). */
let flow: FlowView | undefined;

/** The map of the main canvas: the explanation, or the channel the concepts show alone. */
function mainMap(): FloatMap | undefined {
  return concepts.focusedMap() ?? state.relevance;
}

function persist(): void {
  if (state.imagePath)
    vscode.setState({
      imagePath: state.imagePath,
      view: state.view,
      ...(state.userRules ? { rules: state.userRules } : {}),
      ...(state.method !== 'lrp' ? { method: state.method } : {}),
      tab: state.tab,
      compareNorm: compare.norm,
      ...concepts.persisted(),
    } satisfies PersistedState);
}

function setTab(tab: PanelTab): void {
  state.tab = tab;
  persist();
  document.querySelectorAll<HTMLElement>('.tabs [role="tab"]').forEach((b) => {
    const on = b.dataset.tab === tab;
    b.setAttribute('aria-selected', on ? 'true' : 'false');
    b.classList.toggle('active', on);
  });
  const explainView = document.getElementById('explain-view');
  if (explainView) explainView.hidden = tab !== 'explain';
  compare.setVisible(tab === 'compare');
  concepts.setVisible(tab === 'concepts');
}

const VIEW_LABELS: Record<HeatmapView, string> = {
  overlay: 'heatmap over the photo',
  alone: 'heatmap alone',
  side: 'photo and heatmap side by side',
};

const PERCENTILES = [90, 95, 99, 99.5, 99.9, 100];

/** The scale choices: the usual percentiles, plus the current one when a setting chose another. */
function percentileOptions(current: number): { value: string; label: string }[] {
  const list = PERCENTILES.includes(current) ? PERCENTILES : [...PERCENTILES, current].sort((a, b) => a - b);
  return list.map((p) => ({ value: String(p), label: p === 100 ? 'maximum |R|' : `${p}th percentile of |R|` }));
}

/** Puts the view's values into the controls (after a 'view' message from the host). */
function syncViewControls(): void {
  byId<SelectEl>('colormap').value = state.view.colormap;
  byId<SelectEl>('heatmap-mode').value = state.view.mode;
  byId<SelectEl>('sign').value = state.view.sign;
  const pSel = byId<SelectEl>('percentile');
  if (!PERCENTILES.includes(state.view.percentile)) {
    pSel.replaceChildren(...percentileOptions(state.view.percentile).map((o) => h('vscode-option', { value: o.value }, o.label)));
  }
  pSel.value = String(state.view.percentile);
  byId<HTMLInputElement>('opacity').value = String(state.view.opacity);
  byId<HTMLInputElement>('contrast').value = String(state.view.gamma);
  byId('contrast-value').textContent = `γ ${state.view.gamma}`;
}

const COMPOSITE_HELP: Record<string, string> = {
  epsilon: 'LRP-ε everywhere',
  'alpha1-beta0': 'α1β0 (z+) on every layer',
  gamma: 'LRP-γ on every layer',
  'epsilon-plus': 'z+ on convolutions, ε on dense layers',
  'epsilon-plus-flat': 'flat first layer, z+ convolutions, ε dense',
  'epsilon-gamma-box': 'z^B first layer, γ convolutions, ε dense',
  'epsilon-alpha2-beta1': 'α2β1 convolutions, ε dense',
  'epsilon-alpha2-beta1-flat': 'flat first layer, α2β1 convolutions, ε dense',
};

// ---------- layout ----------

function buildLayout(): void {
  const app = byId('app');
  app.replaceChildren();

  const header = h(
    'header',
    { class: 'header' },
    h('div', { class: 'title' }, h('span', { id: 'image-name' }, state.imageName ?? ''), h('span', { id: 'model-name', class: 'muted' })),
    h('div', { id: 'status', class: 'status', role: 'status', 'aria-live': 'polite' }),
  );
  const tabs = h(
    'nav',
    { class: 'tabs', role: 'tablist' },
    h('button', { role: 'tab', id: 'tab-explain', 'data-tab': 'explain', 'aria-controls': 'explain-view' }, 'Explain'),
    h('button', { role: 'tab', id: 'tab-compare', 'data-tab': 'compare', 'aria-controls': 'compare-view' }, 'Compare methods'),
    h('button', { role: 'tab', id: 'tab-concepts', 'data-tab': 'concepts', 'aria-controls': 'concepts-view' }, 'Concept atlas'),
  );

  const errorBox = h('section', { id: 'error', class: 'error', role: 'alert', hidden: '' });
  const noticeBox = h('section', { id: 'notice', class: 'notice', role: 'status', hidden: '' });

  const canvas = h('canvas', { id: 'heatmap', class: 'heatmap', width: '1', height: '1', 'aria-label': 'Relevance heatmap over the image' });
  const hover = h('div', { id: 'hover', class: 'hover muted' }, 'Hover the image to read the relevance.');

  const opacity = h('input', { id: 'opacity', type: 'range', min: '0', max: '1', step: '0.05', value: String(state.view.opacity), 'aria-label': 'Heatmap opacity' });
  const colormapSel = select('colormap', COLORMAP_NAMES.map((c) => ({ value: c, label: c })), state.view.colormap);
  const signSel = select('sign', SIGN_MODES.map((s) => ({ value: s, label: s === 'both' ? 'positive and negative' : `${s} only` })), state.view.sign);
  const legend = h(
    'div',
    { id: 'legend', class: 'legend' },
    h('span', { class: 'legend-bar', id: 'legend-bar' }),
    h('span', { id: 'legend-range', class: 'muted' }),
    h('span', { id: 'legend-scale', class: 'muted small legend-scale' }),
  );
  const modeSel = select('heatmap-mode', HEATMAP_VIEWS.map((m) => ({ value: m, label: VIEW_LABELS[m] })), state.view.mode);
  const percentileSel = select('percentile', percentileOptions(state.view.percentile), String(state.view.percentile));
  const contrast = h('input', { id: 'contrast', type: 'range', min: '0.2', max: '2', step: '0.05', value: String(state.view.gamma), 'aria-label': 'Contrast (gamma)' }) as HTMLInputElement;
  const gammaValue = h('span', { id: 'contrast-value', class: 'muted small' }, `γ ${state.view.gamma}`);

  const controls = h(
    'div',
    { class: 'controls' },
    h('label', { class: 'field' }, h('span', {}, 'View'), modeSel),
    h('label', { class: 'field' }, h('span', {}, 'Opacity'), opacity),
    h('label', { class: 'field' }, h('span', {}, 'Colormap'), colormapSel),
    h('label', { class: 'field' }, h('span', {}, 'Show'), signSel),
    h('label', { class: 'field' }, h('span', { title: 'The |R| drawn at full colour; larger values are clipped' }, 'Full colour at'), percentileSel),
    h('label', { class: 'field' }, h('span', { title: 'strength = (|R| / scale) ^ γ: below 1 brings out moderate relevance' }, 'Contrast'), contrast, gammaValue),
  );

  const exportsRow = h(
    'div',
    { class: 'exports' },
    h('span', { class: 'muted' }, 'Export'),
    exportButton('png', 'Heatmap PNG'),
    exportButton('npy', 'Relevance .npy'),
    exportButton('json', 'Summary JSON'),
  );

  const stabilityButton = h(
    'vscode-button',
    { secondary: '', id: 'check-stability', title: 'Explain three copies of the input moved by one float32 ulp and compare the maps' },
    'Check float32 stability',
  );
  const stabilityRow = h('div', { class: 'stability', id: 'stability-row', hidden: '' }, stabilityButton, h('span', { id: 'stability', role: 'status', 'aria-live': 'polite' }));
  stabilityButton.addEventListener('click', () => {
    if (!state.result) return;
    showStability('Checking…', false);
    send({ type: 'stability', runId: state.result.runId });
  });

  const detail = h('section', { id: 'layer-detail', class: 'layer-detail', hidden: '' });

  const left = h('div', { class: 'left' }, concepts.banner(), h('div', { class: 'canvas-wrap' }, canvas), hover, legend, controls, exportsRow, stabilityRow, detail);

  const methodSel = select(
    'method',
    MAIN_METHODS.map((m) => ({ value: m, label: m === 'lrp' ? 'LRP (composite below)' : m, description: m === 'lrp' ? 'Layer-wise Relevance Propagation' : METHOD_HELP[m] })),
    state.method,
  );
  const composite = select(
    'composite',
    COMPOSITES.map((c) => ({ value: c, label: c, description: COMPOSITE_HELP[c] })),
    state.rules.composite,
  );
  const epsilon = h('vscode-textfield', { id: 'epsilon', value: String(state.rules.epsilon), 'aria-label': 'epsilon' }) as SelectEl;
  const gamma = h('vscode-textfield', { id: 'gamma', value: String(state.rules.gamma), 'aria-label': 'gamma' }) as SelectEl;
  const settingsLink = h('a', { href: '#', id: 'open-settings' }, 'All rule settings (overrides, bounds, …)');

  const right = h(
    'div',
    { class: 'right' },
    h('section', { class: 'card' }, h('h2', {}, 'Predictions'), h('ol', { id: 'top5', class: 'top5' })),
    inputCard(),
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Rules'),
      h('label', { class: 'field' }, h('span', {}, 'Method'), methodSel),
      h('label', { class: 'field' }, h('span', {}, 'Composite'), composite),
      attentionField(state.rules.attention, () => rulesChanged()),
      h(
        'div',
        { class: 'row' },
        h('label', { class: 'field' }, h('span', {}, 'ε (epsilon)'), epsilon),
        h('label', { class: 'field' }, h('span', {}, 'γ (gamma)'), gamma),
      ),
      h('div', { id: 'rules-error', class: 'field-error', hidden: '' }),
      settingsLink,
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Relevance flow'),
      h('p', { class: 'muted small' }, 'From the output to the input. Bars: relevance sum per layer relative to the explained logit.'),
      tokenFlowNote(),
      h('ol', { id: 'flow', class: 'flow' }),
    ),
  );

  app.append(header, tabs, errorBox, noticeBox, h('main', { class: 'layout', id: 'explain-view' }, left, right), compare.build(), concepts.build());
  tabs.querySelectorAll<HTMLElement>('[role="tab"]').forEach((b) =>
    b.addEventListener('click', () => setTab(b.dataset.tab === 'compare' || b.dataset.tab === 'concepts' ? b.dataset.tab : 'explain')),
  );
  setTab(state.tab);
  methodSel.addEventListener('change', () => {
    if ((MAIN_METHODS as readonly string[]).includes(methodSel.value)) {
      state.method = methodSel.value as MainMethod;
      rulesChanged();
    }
  });

  // ---- events ----
  opacity.addEventListener('input', () => {
    state.view = { ...state.view, opacity: Number(opacity.value) };
    viewChanged();
  });
  colormapSel.addEventListener('change', () => {
    if ((COLORMAP_NAMES as readonly string[]).includes(colormapSel.value)) {
      state.view = { ...state.view, colormap: colormapSel.value as ColormapName };
      viewChanged();
    }
  });
  modeSel.addEventListener('change', () => {
    if ((HEATMAP_VIEWS as readonly string[]).includes(modeSel.value)) {
      state.view = { ...state.view, mode: modeSel.value as HeatmapView };
      viewChanged();
    }
  });
  percentileSel.addEventListener('change', () => {
    const p = Number(percentileSel.value);
    if (p >= 50 && p <= 100) {
      state.view = { ...state.view, percentile: p };
      viewChanged();
    }
  });
  contrast.addEventListener('input', () => {
    const g = Number(contrast.value);
    if (g > 0) {
      state.view = { ...state.view, gamma: g };
      gammaValue.textContent = `γ ${g}`;
      viewChanged();
    }
  });
  signSel.addEventListener('change', () => {
    if ((SIGN_MODES as readonly string[]).includes(signSel.value)) {
      state.view = { ...state.view, sign: signSel.value as SignMode };
      viewChanged();
    }
  });
  composite.addEventListener('change', () => {
    // A composite is an LRP choice: switch the method back to LRP.
    state.method = 'lrp';
    methodSel.value = 'lrp';
    rulesChanged();
  });
  epsilon.addEventListener('change', () => rulesChanged());
  gamma.addEventListener('change', () => rulesChanged());
  settingsLink.addEventListener('click', (e) => {
    e.preventDefault();
    send({ type: 'action', action: 'openSettings' });
  });
  canvas.addEventListener('mousemove', (e) => onHover(e));
  canvas.addEventListener('mouseleave', () => {
    byId('hover').textContent = 'Hover the image to read the relevance.';
  });
  opacity.toggleAttribute('disabled', state.view.mode !== 'overlay');
  updateLegend();
}

/** Where the preprocessing and the labels came from, and the "what the model saw" toggle. */
function inputCard(): HTMLElement {
  const toggle = h('input', { type: 'checkbox', id: 'show-model-input' }) as HTMLInputElement;
  toggle.checked = state.modelView;
  toggle.addEventListener('change', () => {
    state.modelView = toggle.checked;
    drawHeatmap();
  });
  return h(
    'section',
    { class: 'card', id: 'input-card' },
    h('h2', {}, 'Input'),
    h('p', { class: 'small' }, h('span', { class: 'muted' }, 'Preprocessing: '), h('span', { id: 'preprocessing-source' }), h('br', {}), h('span', { id: 'preprocessing-description', class: 'muted' })),
    h('p', { class: 'small' }, h('span', { class: 'muted' }, 'Labels: '), h('span', { id: 'labels-source' })),
    h('label', { class: 'small' }, toggle, ' Show what the model saw (resized and cropped input)'),
  );
}

function showStability(text: string, warning: boolean): void {
  const el = byId('stability');
  el.textContent = text;
  el.className = warning ? 'warning' : 'muted';
}

function exportButton(kind: 'png' | 'npy' | 'json', label: string): HTMLElement {
  const b = h('vscode-button', { secondary: '', class: 'export', 'data-kind': kind }, label);
  b.addEventListener('click', () => send({ type: 'export', kind, view: state.view }));
  return b;
}

// ---------- reactions ----------

let viewTimer: ReturnType<typeof setTimeout> | undefined;
function viewChanged(): void {
  persist();
  // the opacity is the overlay's: the other views draw the map at full colour
  const opacity = document.getElementById('opacity') as HTMLInputElement | null;
  if (opacity) opacity.disabled = state.view.mode !== 'overlay';
  drawHeatmap();
  flow?.redraw();
  updateLegend();
  compare.onViewChanged();
  concepts.onViewChanged();
  clearTimeout(viewTimer);
  viewTimer = setTimeout(() => send({ type: 'viewChanged', view: state.view }), 200);
}

function rulesChanged(): void {
  const composite = (byId<SelectEl>('composite').value || state.rules.composite) as RuleChoice['composite'];
  const eps = ruleFieldState(byId<SelectEl>('epsilon').value, 'ε');
  const gam = ruleFieldState(byId<SelectEl>('gamma').value, 'γ');
  const err = byId('rules-error');
  const problem = eps.error ?? gam.error;
  if (problem || eps.value === undefined || gam.value === undefined) {
    err.textContent = problem ?? 'Invalid value';
    err.hidden = false;
    return;
  }
  err.hidden = true;
  state.rules = { composite, epsilon: eps.value, gamma: gam.value, attention: attentionValue(state.rules.attention) };
  state.userRules = state.rules;
  persist();
  send({ type: 'explain', target: state.result?.target, rules: state.rules, method: state.method });
}

function setStatus(text: string, busy: boolean): void {
  state.busy = busy;
  const status = byId('status');
  status.replaceChildren();
  if (busy) status.append(h('vscode-progress-ring', { class: 'ring' }));
  status.append(h('span', {}, text));
  byId('app').dataset.busy = busy ? 'true' : 'false';
}

function showError(err: PanelError | undefined): void {
  const box = byId('error');
  if (!err) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const titles: Record<ErrorAction, string> = {
    selectModel: 'Select Model',
    openSettings: 'Open Settings',
    showOutput: 'Show Output',
    retry: 'Retry',
  };
  const actions = h('div', { class: 'actions' });
  for (const a of err.actions) {
    const b = h('vscode-button', a === err.actions[0] ? {} : { secondary: '' }, titles[a]);
    b.addEventListener('click', () => send({ type: 'action', action: a }));
    actions.append(b);
  }
  box.replaceChildren(h('strong', { class: 'error-title' }, err.title), h('p', { class: 'error-message' }, err.message), actions);
  box.hidden = false;
}

/** A line above the result (what Cancel did; the model changed on disk, with Explain Again). */
function showNotice(n: PanelNotice | undefined): void {
  const box = byId('notice');
  if (!n) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  box.dataset.kind = n.kind;
  const parts: Node[] = [h('span', { class: 'notice-message' }, n.message)];
  if (n.action === 'explain') {
    const b = h('vscode-button', { secondary: '', id: 'notice-explain' }, 'Explain Again');
    b.addEventListener('click', () => {
      showNotice(undefined);
      // the model changed: its classes may have too, so the top class again
      send({ type: 'explain', rules: state.rules, method: state.method });
    });
    parts.push(b);
  }
  box.replaceChildren(...parts);
  box.hidden = false;
}

function onHover(e: MouseEvent): void {
  const canvas = byId<HTMLCanvasElement>('heatmap');
  const rel = mainMap();
  const img = state.image;
  if (!rel || !img) return;
  const rect = canvas.getBoundingClientRect();
  const cx = ((e.clientX - rect.left) / rect.width) * canvas.width;
  const py = ((e.clientY - rect.top) / rect.height) * canvas.height;
  if (cx < 0 || py < 0 || cx >= canvas.width || py >= canvas.height) return;
  // the picture's own width: the photo's, or in the side view the photo's beside the map's
  const W = Number(canvas.dataset.imageWidth) || canvas.width;
  const px = imageColumnAt(state.view.mode, Math.floor(cx), W);
  if (px < 0) return;
  // the pixel's centre, in the model input (through the crop when the photo is shown)
  const at = inputAt((px + 0.5) / W, (Math.floor(py) + 0.5) / canvas.height, rel, state.result?.region, state.original, modelViewShown());
  if (!at) {
    byId('hover').textContent = 'outside the part of the photo the model saw';
    return;
  }
  const v = sampleBilinear(rel, at.x, at.y);
  const mx = Math.min(rel.width - 1, Math.max(0, Math.round(at.x)));
  const my = Math.min(rel.height - 1, Math.max(0, Math.round(at.y)));
  const exact = rel.data[my * rel.width + mx];
  byId('hover').textContent = `input pixel (${mx}, ${my}): relevance ${formatValue(exact)}  ·  interpolated ${formatValue(v)}`;
}

// ---------- drawing ----------

/** Whether the canvas shows the model input rather than the photo. */
function modelViewShown(): boolean {
  return state.modelView && !!state.result?.modelInput;
}

/** The picture and map the canvas blends: the model input, or the photo with the map on the part the model saw. */
function canvasView(): { image: RgbImage; map?: FloatMap } | undefined {
  const mi = state.result?.modelInput;
  const map = mainMap();
  if (modelViewShown() && mi) return { image: { width: mi.width, height: mi.height, rgb: toUint8(mi.rgb) }, map };
  if (!state.image) return undefined;
  if (!map) return { image: state.image };
  const photo = { image: state.image, originalWidth: state.original?.originalWidth ?? state.image.width, originalHeight: state.original?.originalHeight ?? state.image.height };
  return photoView(photo, map, state.result?.region);
}

function drawHeatmap(): void {
  const canvas = byId<HTMLCanvasElement>('heatmap');
  const view = canvasView();
  if (!view) return;
  // Small images are enlarged (photo pixels kept sharp) so the heatmap is drawn at a useful resolution.
  const image = upscaleNearest(view.image, Math.max(1, Math.floor(MIN_CANVAS_SIDE / Math.max(view.image.width, view.image.height))));
  const mode = view.map ? state.view.mode : 'overlay';
  // the scale is the model-input map's, also when the map is placed on part of the photo
  const shown = mainMap();
  const scale = shown ? mapScale(shown.data, state.view.percentile).value : undefined;
  const pic = composeHeatmap(image, view.map ?? { width: 1, height: 1, data: [0] }, { ...state.view, scale, view: mode });
  putPixels(canvas, pic.width, pic.height, pic.rgba);
  canvas.dataset.imageWidth = String(image.width);
  canvas.dataset.mode = mode;
  canvas.dataset.runId = String(state.result?.runId ?? '');
  canvas.dataset.view = modelViewShown() ? 'model-input' : state.result?.region ? 'photo-region' : 'photo';
  canvas.dataset.map = concepts.focusedMap() ? 'channel' : 'explanation';
}

const MIN_CANVAS_SIDE = 512;
let upscaled: { source: RgbImage; factor: number; image: RgbImage } | undefined;

function upscaleNearest(img: RgbImage, factor: number): RgbImage {
  if (factor <= 1) return img;
  if (upscaled?.source === img && upscaled.factor === factor) return upscaled.image;
  const w = img.width * factor;
  const h = img.height * factor;
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const sy = Math.floor(y / factor);
    for (let x = 0; x < w; x++) {
      const s = (sy * img.width + Math.floor(x / factor)) * 3;
      const o = (y * w + x) * 3;
      rgb[o] = img.rgb[s];
      rgb[o + 1] = img.rgb[s + 1];
      rgb[o + 2] = img.rgb[s + 2];
    }
  }
  upscaled = { source: img, factor, image: { width: w, height: h, rgb } };
  return upscaled.image;
}

function updateLegend(): void {
  const bar = document.getElementById('legend-bar');
  if (bar) bar.style.background = legendGradient(state.view.colormap);
  const range = document.getElementById('legend-range');
  const scaleNote = document.getElementById('legend-scale');
  const shown = mainMap();
  if (range && shown) {
    const sc = mapScale(shown.data, state.view.percentile);
    const m = sc.value;
    const signed = state.view.colormap === 'hot' || state.view.colormap === 'gray' ? `0 … ${formatValue(m)} (|R|)` : `${formatValue(-m)} … 0 … ${formatValue(m)}`;
    range.textContent = signed;
    if (scaleNote) {
      scaleNote.textContent = `Colour bar: ${describeScale(sc, state.view.gamma)}.`;
      scaleNote.dataset.scale = String(m);
    }
  }
}

/** How layer maps are drawn: the main view's colormap, sign, scale percentile and contrast. */
function mapView(): { colormap: ColormapName; sign: SignMode; percentile: number; gamma: number } {
  return { colormap: state.view.colormap, sign: state.view.sign, percentile: state.view.percentile, gamma: state.view.gamma };
}

// ---------- results ----------

function showResult(r: ResultPayload): void {
  state.result = r;
  state.relevance = unpackMap(r.relevance);
  state.rules = r.rules;
  state.method = r.method;
  persist();
  byId<SelectEl>('method').value = r.method;
  byId<SelectEl>('composite').value = r.rules.composite;
  byId<SelectEl>('epsilon').value = String(r.rules.epsilon);
  byId<SelectEl>('gamma').value = String(r.rules.gamma);
  showTokens(r);
  byId('model-name').textContent = ` · ${r.model.split(/[\\/]/).pop() ?? r.model} · ${r.backend}`;
  byId('model-name').title = r.model;
  byId('stability-row').hidden = r.method !== 'lrp';
  byId('preprocessing-source').textContent = r.sources?.preprocessing ?? '';
  byId('preprocessing-description').textContent = r.sources?.description ?? '';
  byId('labels-source').textContent = r.sources?.labels ?? '';
  showStability('', false);

  const top5 = byId('top5');
  top5.replaceChildren();
  for (const p of r.predictions) {
    const li = h(
      'li',
      { class: 'prediction' + (p.index === r.target ? ' selected' : ''), tabindex: '0', role: 'button', 'data-index': String(p.index), title: `Explain class ${p.index}` },
      h('span', { class: 'label' }, p.label),
      h('span', { class: 'score' }, `${(p.score * 100).toFixed(1)}%`),
      h('span', { class: 'score-bar' }),
    );
    (li.lastChild as HTMLElement).style.setProperty('--w', `${Math.max(0.5, p.score * 100)}%`);
    const go = (): void => send({ type: 'explain', target: p.index, rules: state.rules, method: state.method });
    li.addEventListener('click', go);
    li.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        go();
      }
    });
    top5.append(li);
  }
  if (!r.predictions.some((p) => p.index === r.target))
    top5.append(h('li', { class: 'prediction selected' }, h('span', { class: 'label' }, `${r.targetLabel} (explained)`), h('span', { class: 'score' }, '')));

  flow?.render(r);
  drawHeatmap();
  flow?.redraw();
  updateLegend();
  const t = r.timings;
  setStatus(
    `Explained “${r.targetLabel}” (class ${r.target}, logit ${formatValue(r.logit)}) with ${r.method === 'lrp' ? r.rules.composite : r.method} in ${t.totalMs.toFixed(0)} ms` +
      (t.loadMs !== undefined ? ` (model load ${t.loadMs.toFixed(0)} ms)` : ''),
    false,
  );
  byId('app').dataset.state = 'ready';
  compare.onResult();
  concepts.onResult(r);
}

// ---------- messages ----------

window.addEventListener('message', (event: MessageEvent<HostMessage>) => {
  const msg = event.data;
  try {
    switch (msg.type) {
      case 'init':
        state.imagePath = msg.imagePath;
        state.imageName = msg.imageName;
        state.view = msg.view;
        state.rules = msg.rules;
        persist();
        buildLayout();
        flow = new FlowView(byId('flow'), byId('layer-detail'), { mapView, channels: (r, i) => concepts.detailFor(r, i) });
        byId('app').dataset.state = msg.trusted ? 'starting' : 'error';
        break;
      case 'image':
        state.image = { width: msg.image.width, height: msg.image.height, rgb: toUint8(msg.image.rgb) };
        state.original = { originalWidth: msg.image.originalWidth, originalHeight: msg.image.originalHeight };
        drawHeatmap();
        break;
      case 'busy':
        setStatus(msg.message, true);
        showError(undefined);
        showNotice(undefined);
        break;
      case 'notice':
        showNotice(msg.notice);
        break;
      case 'result':
        showError(undefined);
        showResult(msg.result);
        break;
      case 'error':
        setStatus(msg.error.title, false);
        showError(msg.error);
        byId('app').dataset.state = 'error';
        break;
      case 'view':
        state.view = msg.view;
        syncViewControls();
        persist();
        viewChanged();
        break;
      case 'compareMethods':
        compare.onMethods(msg.methods, msg.error, msg.stale === true);
        break;
      case 'compareCell':
        compare.onCell(msg.cell);
        break;
      case 'compareCellError':
        compare.onCellError(msg.compareId, msg.method, msg.message);
        break;
      case 'faithfulness':
        compare.onFaithfulness(msg.result);
        break;
      case 'stability':
        if (msg.runId !== state.result?.runId) break;
        if (msg.error !== undefined || msg.ulpRelL2 === undefined) showStability(msg.error ?? 'The check failed.', true);
        else
          showStability(
            `One float32 ulp of input noise moves this map by ${msg.ulpRelL2.toExponential(1)} (relative L2, worst of ${msg.draws ?? 3}): ` +
              (msg.unstable
                ? 'float32 rounding shapes it. A larger ε or a composite with positive denominators (epsilon-plus-flat) is steadier.'
                : 'stable.'),
            msg.unstable === true,
          );
        break;
      case 'concepts':
        concepts.onConcepts(msg.result);
        break;
      case 'conceptsError':
        concepts.onError(msg.runId, msg.index, msg.view, msg.message);
        break;
      case 'conceptRefs':
        concepts.onRefs(msg.refs);
        break;
      case 'conceptIndexChanged':
        concepts.requestRefs();
        break;
    }
  } catch (err) {
    console.error('LRP Lens panel:', err);
    showError({ title: 'Panel error', message: String((err as Error)?.message ?? err), actions: ['retry'] });
  }
});

send({ type: 'ready' });
