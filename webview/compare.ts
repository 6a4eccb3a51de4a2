// The Compare view of the LRP Lens panel: the same image under several methods (one colormap,
// one normalisation for all), and the faithfulness curves (region perturbation) of those methods.
import {
  COMPARE_METHODS,
  unpackMap,
  type CompareCell,
  type CompareMethod,
  type CompareNorm,
  type FaithfulnessPayload,
  type ViewOptions,
  type WebviewMessage,
} from '../src/protocol';
import { formatPercentile, formatValue, mapScale, renderMap, SIGNED_COLORMAPS, type FloatMap } from './colormap';
import { curvePaths, sharedScale } from './plot';
import { h } from './dom';


const SVG = 'http://www.w3.org/2000/svg';
function s(tag: string, attrs: Record<string, string | number> = {}, text?: string): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

export const METHOD_HELP: Record<string, string> = {
  epsilon: 'LRP-ε everywhere',
  'alpha1-beta0': 'LRP α1β0 on every layer',
  gamma: 'LRP-γ on every layer',
  'epsilon-plus': 'LRP: z+ convolutions, ε dense',
  'epsilon-plus-flat': 'LRP: flat first layer, z+ convolutions, ε dense',
  'epsilon-gamma-box': 'LRP: z^B first layer, γ convolutions, ε dense',
  'epsilon-alpha2-beta1': 'LRP: α2β1 convolutions, ε dense',
  'epsilon-alpha2-beta1-flat': 'LRP: flat first layer, α2β1 convolutions, ε dense',
  gradient: 'gradient (saliency)',
  'gradient-input': 'gradient × input',
  gradcam: 'Grad-CAM (last spatial conv layer)',
  cam: 'CAM (global average pooling + dense only)',
  random: 'uniform random map (baseline)',
};

interface CellState {
  map?: FloatMap;
  /** |R| at the view's percentile (the cell's own scale) and the percentile it was taken at. */
  max?: number;
  maxAt?: number;
  error?: string;
  logit?: number;
  ms?: number;
  layer?: string;
}

export interface CompareHost {
  send(msg: WebviewMessage): void;
  view(): ViewOptions;
  /** The main view's explained class, once there is a result. */
  target(): { index: number; label: string } | undefined;
  /** Something to persist changed (norm). */
  persist(): void;
  /** The user picked a cell: show the explain view. */
  openMethod(method: CompareMethod): void;
}

export class CompareView {
  methods: CompareMethod[] = [];
  norm: CompareNorm = 'own';
  settingError: string | undefined;
  private cells = new Map<CompareMethod, CellState>();
  /** What the cells were computed for (target); cells of another basis are dropped. */
  private basis: string | undefined;
  private compareId = 0;
  private pending = new Set<CompareMethod>();
  private faith: FaithfulnessPayload | undefined;
  private evalBasis: string | undefined;
  visible = false;
  readonly root: HTMLElement;

  constructor(private readonly host: CompareHost) {
    this.root = h('section', { id: 'compare-view', class: 'compare', hidden: '' });
  }

  /** Builds the view's DOM (after the layout is built). */
  build(): HTMLElement {
    const add = h('vscode-single-select', { id: 'compare-add', 'aria-label': 'Method to add' });
    const addBtn = h('vscode-button', { id: 'compare-add-button', secondary: '' }, 'Add');
    const norm = h('vscode-single-select', { id: 'compare-norm', 'aria-label': 'Normalisation' }) as HTMLElement & { value: string };
    norm.append(
      h('vscode-option', { value: 'own' }, 'each map by its own scale'),
      h('vscode-option', { value: 'shared' }, 'one shared scale for all'),
    );
    norm.value = this.norm;
    const evalBtn = h('vscode-button', { id: 'evaluate' }, 'Evaluate faithfulness');
    const cancelBtn = h('vscode-button', { id: 'evaluate-cancel', secondary: '', hidden: '' }, 'Cancel');
    this.root.replaceChildren(
      h(
        'div',
        { class: 'compare-toolbar' },
        h('label', { class: 'field inline' }, h('span', {}, 'Add method'), add),
        addBtn,
        h('label', { class: 'field inline' }, h('span', {}, 'Normalise'), norm),
        h('span', { class: 'spacer' }),
        evalBtn,
        cancelBtn,
      ),
      h('div', { id: 'compare-setting-error', class: 'field-error', hidden: '' }),
      h('div', { id: 'compare-grid', class: 'compare-grid' }),
      h('p', { id: 'compare-note', class: 'muted small compare-note' }),
      h(
        'section',
        { id: 'faith', class: 'card faith', hidden: '' },
        h('h2', {}, 'Faithfulness: region perturbation'),
        h('p', { id: 'faith-status', class: 'muted small' }),
        h('div', { class: 'faith-body' }, h('div', { id: 'faith-plot-wrap', class: 'faith-plot-wrap' }), h('ol', { id: 'faith-legend', class: 'faith-legend' })),
        h('p', { id: 'faith-note', class: 'muted small' }),
      ),
    );
    addBtn.addEventListener('click', () => {
      const v = (add as HTMLElement & { value: string }).value;
      if ((COMPARE_METHODS as readonly string[]).includes(v) && !this.methods.includes(v as CompareMethod)) this.setMethods([...this.methods, v as CompareMethod]);
    });
    norm.addEventListener('change', () => {
      if (norm.value === 'own' || norm.value === 'shared') {
        this.norm = norm.value;
        this.host.persist();
        this.draw();
      }
    });
    evalBtn.addEventListener('click', () => this.evaluate());
    cancelBtn.addEventListener('click', () => this.host.send({ type: 'cancelEvaluate' }));
    this.renderGrid();
    this.renderFaith();
    return this.root;
  }

  private byId<T extends HTMLElement>(id: string): T | null {
    return this.root.querySelector<T>(`#${id}`);
  }

  setVisible(v: boolean): void {
    this.visible = v;
    this.root.hidden = !v;
    if (v) this.request();
  }

  /** The `lrpLens.compare` setting arrived (or changed). */
  onMethods(methods: CompareMethod[], error: string | undefined, stale: boolean): void {
    this.methods = methods;
    this.settingError = error;
    if (stale) this.invalidate();
    this.renderGrid();
    this.request();
  }

  /** A new main result: cells computed for another class are out of date. */
  onResult(): void {
    const t = this.host.target();
    const basis = t ? String(t.index) : undefined;
    if (basis !== this.basis) {
      this.cells.clear();
      this.pending.clear();
      this.basis = basis;
      this.renderGrid();
    }
    this.request();
    this.renderFaith();
  }

  onViewChanged(): void {
    this.draw();
  }

  private invalidate(): void {
    this.cells.clear();
    this.pending.clear();
    this.basis = undefined;
    this.faith = undefined;
    this.renderFaith();
  }

  private setMethods(methods: CompareMethod[]): void {
    this.methods = methods;
    this.host.send({ type: 'setCompareMethods', methods });
    this.renderGrid();
    this.request();
  }

  /** Asks the host for the cells still missing (only while visible and once a class is explained). */
  private request(): void {
    const t = this.host.target();
    if (!this.visible || !t) return;
    if (this.basis !== String(t.index)) {
      this.cells.clear();
      this.pending.clear();
      this.basis = String(t.index);
      this.renderGrid();
    }
    const missing = this.methods.filter((m) => !this.cells.has(m) && !this.pending.has(m));
    if (!missing.length) return;
    // A new request replaces the running one on the host: everything not finished goes again.
    const todo = this.methods.filter((m) => !this.cells.has(m));
    this.pending = new Set(todo);
    this.host.send({ type: 'compare', compareId: ++this.compareId, methods: todo, target: t.index });
    this.renderGrid();
  }

  onCell(cell: CompareCell): void {
    if (cell.compareId !== this.compareId) return;
    const map = unpackMap(cell.map);
    this.pending.delete(cell.method);
    this.cells.set(cell.method, { map, logit: cell.logit, ms: cell.ms, layer: cell.layer });
    this.renderGrid();
  }

  onCellError(compareId: number, method: CompareMethod, message: string): void {
    if (compareId !== this.compareId) return;
    this.pending.delete(method);
    this.cells.set(method, { error: message });
    this.renderGrid();
  }

  // ---------- grid ----------

  private renderGrid(): void {
    const grid = this.byId('compare-grid');
    if (!grid) return;
    const err = this.byId('compare-setting-error');
    if (err) {
      err.hidden = !this.settingError;
      err.textContent = this.settingError ? `${this.settingError} — showing the default methods.` : '';
    }
    const add = this.byId<HTMLElement & { value: string }>('compare-add');
    if (add) {
      const left = COMPARE_METHODS.filter((m) => !this.methods.includes(m));
      add.replaceChildren(...left.map((m) => h('vscode-option', { value: m, description: METHOD_HELP[m] ?? '' }, m)));
      if (left.length) add.value = left[0];
    }
    grid.replaceChildren();
    if (!this.methods.length) grid.append(h('p', { class: 'muted' }, 'No methods to compare: add one above (stored in the setting lrpLens.compare).'));
    for (const m of this.methods) {
      const c = this.cells.get(m);
      const remove = h('button', { class: 'cell-remove', title: `Remove ${m}`, 'aria-label': `Remove ${m}` }, '×');
      remove.addEventListener('click', (e) => {
        e.stopPropagation();
        this.cells.delete(m);
        this.setMethods(this.methods.filter((x) => x !== m));
      });
      let body: HTMLElement;
      let foot: string;
      if (c?.error) {
        body = h('div', { class: 'cell-error', role: 'alert' }, c.error);
        foot = 'not available';
      } else if (c?.map) {
        body = h('canvas', { class: 'cell-map', width: String(c.map.width), height: String(c.map.height), 'aria-label': `${m} heatmap` });
        foot = `${(c.ms ?? 0).toFixed(0)} ms` + (c.layer ? ` · ${c.layer}` : '');
      } else {
        body = h('div', { class: 'cell-wait' }, h('vscode-progress-ring', { class: 'ring' }));
        foot = this.pending.has(m) ? 'computing…' : 'waiting for the explanation…';
      }
      const state = c?.error ? 'error' : c?.map ? 'drawn' : 'pending';
      const cell = h(
        'figure',
        { class: `cell ${state}`, 'data-method': m, 'data-state': state, tabindex: '0', role: 'button', title: `${METHOD_HELP[m] ?? m}. Click to open in the main view.` },
        h('figcaption', {}, h('span', { class: 'cell-name', title: m }, m), remove),
        h('div', { class: 'cell-body' }, body),
        h('div', { class: 'cell-foot muted small' }, foot),
      );
      const open = (): void => {
        if (c?.error) return;
        this.host.openMethod(m);
      };
      cell.addEventListener('click', open);
      cell.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          open();
        }
      });
      grid.append(cell);
    }
    this.draw();
  }

  /** Draws every finished cell with the one colormap and normalisation, and states them. */
  private draw(): void {
    const view = this.host.view();
    // each cell's own scale: |R| at the view's percentile (the main view's scaling)
    for (const c of this.cells.values())
      if (c.map && c.maxAt !== view.percentile) {
        c.max = mapScale(c.map.data, view.percentile).value;
        c.maxAt = view.percentile;
      }
    const maxima = [...this.cells.values()].filter((c) => c.map).map((c) => c.max ?? 0);
    const shared = sharedScale(maxima);
    const scaleName = view.percentile >= 100 ? 'max |R|' : `${formatPercentile(view.percentile)} percentile of |R|`;
    this.root.querySelectorAll<HTMLCanvasElement>('figure.cell canvas.cell-map').forEach((canvas) => {
      const m = (canvas.closest('figure') as HTMLElement).dataset.method as CompareMethod;
      const c = this.cells.get(m);
      if (!c?.map) return;
      const ctx = canvas.getContext('2d');
      if (!ctx) return;
      const img = ctx.createImageData(c.map.width, c.map.height);
      img.data.set(renderMap(c.map, { colormap: view.colormap, sign: view.sign, gamma: view.gamma, scale: this.norm === 'shared' ? shared : c.max }));
      ctx.putImageData(img, 0, 0);
      canvas.dataset.drawn = 'true';
      const foot = canvas.closest('figure')?.querySelector('.cell-foot');
      if (foot && !foot.querySelector('.cell-scale')) foot.prepend(h('span', { class: 'cell-scale' }));
      const scaleEl = foot?.querySelector('.cell-scale');
      if (scaleEl) scaleEl.textContent = `${scaleName} ${formatValue(c.max ?? 0)} · `;
    });
    const note = this.byId('compare-note');
    if (!note) return;
    const t = this.host.target();
    const signed = SIGNED_COLORMAPS.has(view.colormap);
    const colours = signed ? 'red = positive, blue/dark = negative, the middle colour = 0' : 'brightness = |R|';
    const showing = view.sign === 'both' ? 'positive and negative relevance' : `${view.sign} relevance only`;
    const scaling =
      this.norm === 'shared'
        ? `all maps at full colour from one shared |R| = ${formatValue(shared)} (the largest ${scaleName} over the cells; larger values clipped; methods on different scales look faint)`
        : `each map at full colour from its own ${scaleName} (shown under each cell; larger values clipped)`;
    note.textContent =
      `Colormap ${view.colormap} (${colours}), ${showing}; ${scaling}${view.gamma !== 1 ? `, contrast γ ${formatValue(view.gamma)}` : ''}.` +
      (t ? ` All cells explain class ${t.index} “${t.label}”.` : '') +
      ' Click a cell to open it in the main view.';
  }

  // ---------- faithfulness ----------

  private evaluate(): void {
    const t = this.host.target();
    const methods = this.methods.filter((m) => !this.cells.get(m)?.error);
    if (!methods.length) return;
    this.faith = undefined;
    this.evalBasis = t ? String(t.index) : undefined;
    this.host.send({ type: 'evaluate', methods, ...(t ? { target: t.index } : {}) });
    const faith = this.byId('faith');
    if (faith) faith.hidden = false;
    const status = this.byId('faith-status');
    if (status) status.textContent = 'Starting…';
  }

  onFaithfulness(r: FaithfulnessPayload): void {
    if (this.faith && r.evalId < this.faith.evalId) return;
    this.faith = r;
    this.renderFaith();
  }

  private renderFaith(): void {
    const box = this.byId('faith');
    if (!box) return;
    const r = this.faith;
    const cancel = this.byId('evaluate-cancel');
    const evalBtn = this.byId('evaluate');
    const running = r?.state === 'running';
    if (cancel) cancel.hidden = !running;
    if (evalBtn) evalBtn.toggleAttribute('disabled', running);
    if (!r) {
      if (!this.evalBasis) box.hidden = true;
      return;
    }
    box.hidden = false;
    box.dataset.state = r.state;
    const t = this.host.target();
    const stale = t && String(t.index) !== String(r.target) && r.state !== 'running';
    const status = this.byId('faith-status');
    if (status) {
      const done = `${r.methods.length}/${r.total} methods`;
      status.textContent =
        (r.state === 'running' ? `Evaluating… ${done}` : r.state === 'done' ? `Done: ${done}` : r.state === 'cancelled' ? `Cancelled after ${done}` : `Failed: ${r.message ?? ''}`) +
        (stale ? ` — for class ${r.target}; the main view now explains another class: evaluate again.` : '');
    }
    const W = 560;
    const H = 280;
    const box2 = { width: W, height: H, left: 56, right: 12, top: 12, bottom: 40 };
    const series = r.methods.filter((m) => m.curve?.length);
    const geo = curvePaths(series.map((m) => m.curve), box2);
    const svg = s('svg', { id: 'faith-plot', class: 'faith-plot', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Target logit against perturbation steps' });
    const axes = s('g', { class: 'axes' });
    axes.append(
      s('line', { x1: box2.left, y1: H - box2.bottom, x2: W - box2.right, y2: H - box2.bottom }),
      s('line', { x1: box2.left, y1: box2.top, x2: box2.left, y2: H - box2.bottom }),
    );
    for (const tk of geo.xTicks) {
      axes.append(s('line', { class: 'grid', x1: tk.pos, y1: box2.top, x2: tk.pos, y2: H - box2.bottom }));
      axes.append(s('text', { x: tk.pos, y: H - box2.bottom + 14, 'text-anchor': 'middle' }, String(tk.value)));
    }
    for (const tk of geo.yTicks) {
      axes.append(s('line', { class: 'grid', x1: box2.left, y1: tk.pos, x2: W - box2.right, y2: tk.pos }));
      axes.append(s('text', { x: box2.left - 6, y: tk.pos + 4, 'text-anchor': 'end' }, formatValue(tk.value)));
    }
    axes.append(s('text', { x: box2.left + (W - box2.left - box2.right) / 2, y: H - 6, 'text-anchor': 'middle' }, `steps (${r.patches} of ${r.patchCount} patches of ${r.patch}×${r.patch} px by the last, ${sharePct(r.share)} of the image)`));
    axes.append(s('text', { x: 12, y: box2.top + (H - box2.top - box2.bottom) / 2, 'text-anchor': 'middle', transform: `rotate(-90 12 ${box2.top + (H - box2.top - box2.bottom) / 2})` }, 'target logit'));
    svg.append(axes);
    const colourOf = (name: string): string => `series s${Math.max(0, this.methods.indexOf(name as CompareMethod)) % 8}${name === 'random' ? ' baseline' : ''}`;
    series.forEach((m, i) => {
      svg.append(s('path', { class: colourOf(m.name), d: geo.paths[i], 'data-method': m.name }));
    });
    this.byId('faith-plot-wrap')?.replaceChildren(svg);
    const legend = this.byId('faith-legend');
    if (legend) {
      const sorted = [...r.methods].sort((a, b) => (b.aopc ?? -Infinity) - (a.aopc ?? -Infinity));
      legend.replaceChildren(
        ...sorted.map((m) => {
          const sw = s('svg', { class: 'swatch', viewBox: '0 0 24 8', width: 24, height: 8 });
          sw.append(s('line', { class: colourOf(m.name), x1: 0, y1: 4, x2: 24, y2: 4 }));
          return h(
            'li',
            { 'data-method': m.name },
            sw,
            h('span', { class: 'name' }, m.name + (m.name === 'random' ? ' (baseline)' : '')),
            m.error ? h('span', { class: 'cell-error small' }, m.error) : h('span', { class: 'aopc' }, `AOPC ${formatValue(m.aopc ?? NaN)}`),
          );
        }),
      );
    }
    const note = this.byId('faith-note');
    if (note)
      note.textContent =
        `Class ${r.target}${r.targetLabel ? ` “${r.targetLabel}”` : ''}: the input is cut into ${r.patchCount} patches of ${r.patch}×${r.patch} px, replaced (each by its mean) in the order each method ranks them, ` +
        `${r.patches} of them over ${r.steps} steps: ${sharePct(r.share)} of the image perturbed by the last step. ` +
        'AOPC = mean drop of the target logit over the steps: higher = the map finds what the model relies on. random is the baseline (several seeds).';
  }
}

function sharePct(f: number): string {
  return `${(f * 100).toFixed(f < 0.1 ? 1 : 0)}%`;
}
