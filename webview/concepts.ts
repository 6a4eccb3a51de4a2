// Concepts (CRP) in the panel: the layer detail's top channels (each with its conditional heatmap,
// its share of the layer's relevance, its positive and negative parts and, when a folder was
// indexed for the layer, its reference crops); a channel shown large on the main canvas with a way
// back; and the Concept atlas tab (the top-k channels of a chosen layer side by side). The host
// computes the maps in the engine process; this module draws them.
import {
  CONCEPT_LAYER_OPS,
  MAX_CONCEPT_CHANNELS,
  toUint8,
  unpackMap,
  type ConceptRefsPayload,
  type ConceptsPayload,
  type ConceptView,
  type PersistedState,
  type ResultPayload,
  type ViewOptions,
  type WebviewMessage,
} from '../src/protocol';
import { composeHeatmap, describeScale, formatValue, mapScale, type FloatMap, type RgbImage } from './colormap';
import { putPixels, putRgb } from './canvas';
import { h } from './dom';

/** Channels in the layer detail. */
export const DETAIL_CHANNELS = 8;
export const ATLAS_SIZES = [4, 8, 16, 32].filter((k) => k <= MAX_CONCEPT_CHANNELS);

export interface ConceptsDeps {
  send(msg: WebviewMessage): void;
  view(): ViewOptions;
  result(): ResultPayload | undefined;
  /** The focused channel changed: redraw the main canvas, its legend and hover. */
  redrawMain(): void;
  /** Show the Explain tab (an atlas cell opens its channel there). */
  showExplain(): void;
  persist(): void;
}

interface Focus {
  runId: number;
  layer: string;
  channel: number;
  share: number;
  positiveSum: number;
  negativeSum: number;
  map: FloatMap;
}

interface Shown {
  key: string;
  payload?: ConceptsPayload;
  maps: FloatMap[];
  error?: string;
}

const pct = (v: number): string => `${(v * 100).toFixed(1)}%`;

export class ConceptsView {
  atlasLayer: string | undefined;
  atlasTop = 8;
  private focus: Focus | undefined;
  private detail: (Shown & { el: HTMLElement; refs?: ConceptRefsPayload }) | undefined;
  private atlas: Shown | undefined;
  private visible = false;
  private bannerEl: HTMLElement | undefined;

  constructor(private readonly deps: ConceptsDeps) {}

  restore(saved: PersistedState | undefined): void {
    if (saved?.atlasLayer) this.atlasLayer = saved.atlasLayer;
    if (saved?.atlasTop && ATLAS_SIZES.includes(saved.atlasTop)) this.atlasTop = saved.atlasTop;
  }

  persisted(): Pick<PersistedState, 'atlasLayer' | 'atlasTop'> {
    return { ...(this.atlasLayer ? { atlasLayer: this.atlasLayer } : {}), atlasTop: this.atlasTop };
  }

  /** The map the main canvas shows instead of the explanation: the focused channel's, if any. */
  focusedMap(): FloatMap | undefined {
    return this.focus && this.focus.runId === this.deps.result()?.runId ? this.focus.map : undefined;
  }

  // ---------- the main canvas ----------

  /** The line above the main canvas naming the channel shown, with the way back. */
  banner(): HTMLElement {
    const back = h('vscode-button', { secondary: '', id: 'concept-back' }, 'Back to the full explanation');
    back.addEventListener('click', () => this.setFocus(undefined));
    this.bannerEl = h('div', { id: 'concept-focus', class: 'concept-focus', role: 'status', hidden: '' }, h('span', { id: 'concept-focus-label' }), back);
    this.updateBanner();
    return this.bannerEl;
  }

  private setFocus(f: Focus | undefined): void {
    this.focus = f;
    this.updateBanner();
    document.querySelectorAll<HTMLElement>('[data-concept-channel]').forEach((el) => {
      const on = !!f && el.dataset.conceptLayer === f.layer && Number(el.dataset.conceptChannel) === f.channel;
      el.classList.toggle('focused', on);
      el.setAttribute('aria-pressed', on ? 'true' : 'false');
    });
    this.deps.redrawMain();
  }

  private updateBanner(): void {
    const b = this.bannerEl;
    if (!b) return;
    const f = this.focusedMap() ? this.focus : undefined;
    b.hidden = !f;
    b.dataset.channel = f ? String(f.channel) : '';
    const label = b.querySelector('#concept-focus-label');
    if (label && f)
      label.textContent =
        `Showing channel ${f.channel} of ${f.layer} alone: its conditional relevance, ${pct(f.share)} of the layer's relevance ` +
        `(+${formatValue(f.positiveSum)} / ${formatValue(f.negativeSum)} at the input).`;
  }

  private focusOn(p: ConceptsPayload, k: number, map: FloatMap): void {
    const c = p.channels[k];
    this.setFocus({ runId: p.runId, layer: p.layer, channel: c.channel, share: c.share, positiveSum: c.positiveSum, negativeSum: c.negativeSum, map });
  }

  // ---------- the layer detail ----------

  /** The top-channels part of the layer detail of layer `index` (requested from the host on first use). */
  detailFor(r: ResultPayload, index: number): HTMLElement {
    const key = `${r.runId}:${index}`;
    if (this.detail?.key === key) return this.detail.el;
    const el = h('div', { class: 'concept-detail', id: 'concept-detail', 'data-state': 'loading' });
    this.detail = { key, el, maps: [] };
    if (r.method !== 'lrp') {
      this.detail.error = 'Concepts condition an LRP explanation: choose LRP as the method.';
      this.renderDetail();
      return el;
    }
    this.renderDetail();
    this.deps.send({ type: 'concepts', runId: r.runId, index, view: 'detail', top: DETAIL_CHANNELS });
    return el;
  }

  private renderDetail(): void {
    const d = this.detail;
    if (!d) return;
    const p = d.payload;
    if (d.error) {
      d.el.dataset.state = 'error';
      d.el.replaceChildren(h('p', { class: 'muted small concept-error' }, d.error));
      return;
    }
    if (!p) {
      d.el.dataset.state = 'loading';
      d.el.replaceChildren(h('p', { class: 'muted small' }, 'Conditional maps of the top channels…'));
      return;
    }
    d.el.dataset.state = 'drawn';
    const list = h('ol', { class: 'concept-channels' });
    p.channels.forEach((c, k) => {
      const canvas = h('canvas', { class: 'concept-thumb', width: '1', height: '1' });
      const refs = h('div', { class: 'concept-refs', 'data-state': 'loading' });
      const li = h(
        'li',
        {
          class: 'concept-channel',
          role: 'button',
          tabindex: '0',
          'aria-pressed': 'false',
          'data-concept-layer': p.layer,
          'data-concept-channel': String(c.channel),
          title: `Show channel ${c.channel} large over the photo`,
        },
        canvas,
        h(
          'div',
          { class: 'concept-info' },
          h('strong', {}, `channel ${c.channel}`),
          h('span', { class: 'share' }, `${pct(c.share)} of the layer`),
          h('span', { class: 'parts muted' }, `+${formatValue(c.positiveSum)} / ${formatValue(c.negativeSum)}`),
          refs,
        ),
      );
      this.clickable(li, () => this.focusOn(p, k, d.maps[k]));
      list.append(li);
    });
    d.el.replaceChildren(
      h('p', { class: 'muted small' }, `The ${p.channels.length} channels of ${p.channelCount} with the most relevance; each map is the input relevance of what flows through that channel alone, coloured by its own ${this.scaleWords()}. Click one to see it large.`),
      list,
      h('p', { class: 'muted small concept-refs-note', id: 'concept-refs-note' }, 'Looking for reference examples…'),
    );
    this.drawThumbs(d.el, d.maps);
    this.renderRefs();
    this.setFocus(this.focus);
  }

  private renderRefs(): void {
    const d = this.detail;
    const refs = d?.refs;
    if (!d || !d.payload || !refs) return;
    const note = d.el.querySelector<HTMLElement>('#concept-refs-note');
    const folderName = refs.folder ? refs.folder.split(/[\\/]/).pop() : undefined;
    if (note) {
      note.dataset.state = refs.error ? 'error' : refs.stale ? 'stale' : refs.folder ? 'drawn' : 'none';
      note.textContent = refs.error
        ? `Reference examples: ${refs.error}`
        : refs.stale
          ? `Reference examples: ${refs.stale}.`
          : refs.folder
            ? `Reference examples: the images of ${folderName}/ where each channel carries the most relevance, cropped where its relevance sits.`
            : `Reference examples: no folder is indexed for this layer. Right-click a folder, Explain All Images in Folder, then Index Concepts and choose ${d.payload.layer}.`;
    }
    d.el.querySelectorAll<HTMLElement>('.concept-channel').forEach((li) => {
      const box = li.querySelector<HTMLElement>('.concept-refs');
      if (!box) return;
      const ch = refs.channels.find((c) => c.channel === Number(li.dataset.conceptChannel));
      box.dataset.state = ch?.refs.length ? 'drawn' : 'none';
      box.replaceChildren(
        ...(ch?.refs ?? []).map((x) => {
          const c = h('canvas', { class: 'ref-crop', title: `${x.file}: relevance ${formatValue(x.relevance)} through channel ${ch?.channel}` });
          putRgb(c, { width: x.crop.width, height: x.crop.height, rgb: toUint8(x.crop.rgb) });
          return c;
        }),
      );
    });
  }

  // ---------- the atlas tab ----------

  build(): HTMLElement {
    const layerSel = h('vscode-single-select', { id: 'atlas-layer', 'aria-label': 'Layer' });
    const topSel = h('vscode-single-select', { id: 'atlas-top', 'aria-label': 'Channels' });
    for (const k of ATLAS_SIZES) topSel.append(h('vscode-option', { value: String(k) }, `${k} channels`));
    (topSel as HTMLElement & { value: string }).value = String(this.atlasTop);
    layerSel.addEventListener('change', () => {
      const v = (layerSel as HTMLElement & { value: string }).value;
      if (!v || v === this.atlasLayer) return;
      this.atlasLayer = v;
      this.deps.persist();
      this.requestAtlas();
    });
    topSel.addEventListener('change', () => {
      const k = Number((topSel as HTMLElement & { value: string }).value);
      if (!ATLAS_SIZES.includes(k) || k === this.atlasTop) return;
      this.atlasTop = k;
      this.deps.persist();
      this.requestAtlas();
    });
    return h(
      'section',
      { id: 'concepts-view', class: 'concepts-view', hidden: '' },
      h(
        'div',
        { class: 'atlas-controls' },
        h('label', { class: 'field' }, h('span', {}, 'Layer'), layerSel),
        h('label', { class: 'field' }, h('span', {}, 'Show'), topSel),
      ),
      h('p', { id: 'atlas-note', class: 'muted small' }),
      h('div', { id: 'atlas-grid', class: 'atlas-grid', role: 'list', 'data-state': 'empty' }),
    );
  }

  setVisible(on: boolean): void {
    this.visible = on;
    const v = document.getElementById('concepts-view');
    if (v) v.hidden = !on;
    if (on) this.requestAtlas();
  }

  /** The layers the atlas offers: the flow's linear layers with their index. */
  private atlasLayers(r: ResultPayload): { name: string; opType: string; index: number }[] {
    return r.layers.map((l, index) => ({ name: l.name, opType: l.opType, index })).filter((l) => CONCEPT_LAYER_OPS.includes(l.opType));
  }

  private fillLayerSelect(r: ResultPayload): void {
    const sel = document.getElementById('atlas-layer') as (HTMLElement & { value: string }) | null;
    if (!sel) return;
    const layers = this.atlasLayers(r);
    if (!this.atlasLayer || !layers.some((l) => l.name === this.atlasLayer)) this.atlasLayer = (layers.find((l) => l.opType === 'Conv') ?? layers[0])?.name;
    sel.replaceChildren(...layers.map((l) => h('vscode-option', { value: l.name }, `${l.opType} · ${l.name}`)));
    if (this.atlasLayer) sel.value = this.atlasLayer;
  }

  private requestAtlas(): void {
    const r = this.deps.result();
    const grid = document.getElementById('atlas-grid');
    const note = document.getElementById('atlas-note');
    if (!r || !grid || !note || !this.visible) return;
    if (r.method !== 'lrp') {
      this.atlas = { key: '', maps: [], error: 'Concepts condition an LRP explanation: choose LRP as the method.' };
      this.renderAtlas();
      return;
    }
    const layer = this.atlasLayers(r).find((l) => l.name === this.atlasLayer);
    if (!layer) {
      this.atlas = { key: '', maps: [], error: 'This model has no layer with channels to condition on.' };
      this.renderAtlas();
      return;
    }
    const key = `${r.runId}:${layer.index}:${this.atlasTop}`;
    if (this.atlas?.key === key && (this.atlas.payload || !this.atlas.error)) return;
    this.atlas = { key, maps: [] };
    this.renderAtlas();
    this.deps.send({ type: 'concepts', runId: r.runId, index: layer.index, view: 'atlas', top: this.atlasTop });
  }

  private renderAtlas(): void {
    const grid = document.getElementById('atlas-grid');
    const note = document.getElementById('atlas-note');
    const a = this.atlas;
    if (!grid || !note || !a) return;
    if (a.error) {
      grid.dataset.state = 'error';
      grid.replaceChildren();
      note.textContent = a.error;
      return;
    }
    const p = a.payload;
    if (!p) {
      grid.dataset.state = 'loading';
      grid.replaceChildren(h('vscode-progress-ring', { class: 'ring' }));
      note.textContent = `Conditional maps of the top ${this.atlasTop} channels of ${this.atlasLayer}…`;
      return;
    }
    grid.dataset.state = 'drawn';
    const r = this.deps.result();
    note.textContent =
      `${p.opType} · ${p.layer}: the ${p.channels.length} channels of ${p.channelCount} with the most relevance for “${r?.targetLabel ?? p.layer}”, ` +
      `largest first; each map is the input relevance of what flows through that channel alone, coloured by its own ${this.scaleWords()}. ` +
      `Computed in ${p.ms.toFixed(0)} ms. Click one to see it large.`;
    grid.replaceChildren(
      ...p.channels.map((c, k) => {
        const fig = h(
          'figure',
          { class: 'atlas-cell', role: 'listitem', tabindex: '0', 'data-concept-layer': p.layer, 'data-concept-channel': String(c.channel), title: `Show channel ${c.channel} large over the photo` },
          h('canvas', { class: 'concept-thumb', width: '1', height: '1' }),
          h(
            'figcaption',
            {},
            h('strong', {}, `channel ${c.channel}`),
            h('span', { class: 'share' }, `${pct(c.share)} of the layer`),
            h('span', { class: 'parts muted' }, `+${formatValue(c.positiveSum)} / ${formatValue(c.negativeSum)}`),
          ),
        );
        this.clickable(fig, () => {
          this.deps.showExplain();
          this.focusOn(p, k, a.maps[k]);
        });
        return fig;
      }),
    );
    this.drawThumbs(grid, a.maps);
    this.setFocus(this.focus);
  }

  // ---------- messages and redraws ----------

  /** A new result: the focus and the maps of the old run go; the atlas follows the new run. */
  onResult(r: ResultPayload): void {
    if (this.focus && this.focus.runId !== r.runId) this.focus = undefined;
    this.updateBanner();
    this.fillLayerSelect(r);
    if (this.visible) this.requestAtlas();
  }

  onConcepts(p: ConceptsPayload): void {
    const maps = p.channels.map((c) => unpackMap(c.map));
    if (p.view === 'detail' && this.detail?.key === `${p.runId}:${p.index}`) {
      this.detail.payload = p;
      this.detail.maps = maps;
      this.renderDetail();
      this.requestRefs();
    } else if (p.view === 'atlas' && this.atlas?.key.startsWith(`${p.runId}:${p.index}:`)) {
      this.atlas.payload = p;
      this.atlas.maps = maps;
      this.renderAtlas();
    }
  }

  onError(runId: number, index: number, view: ConceptView, message: string): void {
    if (view === 'detail' && this.detail?.key === `${runId}:${index}`) {
      this.detail.error = message;
      this.renderDetail();
    } else if (view === 'atlas' && this.atlas?.key.startsWith(`${runId}:${index}:`)) {
      this.atlas.error = message;
      this.renderAtlas();
    }
  }

  /** Asks for the reference crops of the detail's channels (again, after a folder was indexed). */
  requestRefs(): void {
    const p = this.detail?.payload;
    if (!p || !p.channels.length) return;
    this.deps.send({ type: 'conceptRefs', runId: p.runId, index: p.index, channels: p.channels.map((c) => c.channel) });
  }

  onRefs(refs: ConceptRefsPayload): void {
    if (this.detail?.key !== `${refs.runId}:${refs.index}`) return;
    this.detail.refs = refs;
    this.renderRefs();
  }

  /** The colormap, sign, scale or contrast changed: redraw the maps. */
  onViewChanged(): void {
    if (this.detail?.payload) this.drawThumbs(this.detail.el, this.detail.maps);
    const grid = document.getElementById('atlas-grid');
    if (grid && this.atlas?.payload) this.drawThumbs(grid, this.atlas.maps);
  }

  private scaleWords(): string {
    const v = this.deps.view();
    return v.percentile >= 100 ? 'maximum |R|' : `${v.percentile}th percentile of |R|`;
  }

  /** Each map over the picture the model saw (or alone when the result has none), at its own scale. */
  private drawThumbs(root: HTMLElement, maps: FloatMap[]): void {
    const r = this.deps.result();
    const mi = r?.modelInput;
    const image: RgbImage | undefined = mi ? { width: mi.width, height: mi.height, rgb: toUint8(mi.rgb) } : undefined;
    const view = this.deps.view();
    root.querySelectorAll<HTMLCanvasElement>('canvas.concept-thumb').forEach((canvas, k) => {
      const map = maps[k];
      if (!map) return;
      const base = image && image.width === map.width && image.height === map.height ? image : { width: map.width, height: map.height, rgb: new Uint8Array(map.width * map.height * 3).fill(255) };
      const pic = composeHeatmap(base, map, { ...view, view: image ? 'overlay' : 'alone' });
      putPixels(canvas, pic.width, pic.height, pic.rgba);
      canvas.title = `Colours: ${describeScale(mapScale(map.data, view.percentile), view.gamma)}`;
    });
  }

  private clickable(el: HTMLElement, go: () => void): void {
    el.addEventListener('click', go);
    el.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        go();
      }
    });
  }
}
