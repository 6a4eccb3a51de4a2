// The relevance flow of the Explain view: every explained layer from the output to the input with
// its rule, relevance sum as a bar, positive and negative parts and a thumbnail of its map; and
// the layer detail a click opens (the map large, token notes, the top channels of ./concepts).
import { unpackMap, type ResultPayload } from '../src/protocol';
import { describeScale, formatValue, mapScale, renderMap, type FloatMap } from './colormap';
import { putPixels } from './canvas';
import { h } from './dom';
import { tokenBadge, tokenNote } from './token-flow';
import { flowBar } from './view';

export interface FlowDeps {
  /** How maps are drawn now (colormap, sign, percentile, contrast). */
  mapView(): Parameters<typeof renderMap>[1];
  /** The top channels of a layer with their conditional maps (./concepts). */
  channels(r: ResultPayload, index: number): HTMLElement;
}

function barEl(value: number, scale: number, diverging: boolean): HTMLElement {
  const { leftPct, widthPct, negative } = flowBar(value, scale, diverging);
  const fill = h('span', { class: 'bar-fill' + (negative ? ' negative' : '') });
  fill.style.left = `${leftPct}%`;
  fill.style.width = `${widthPct}%`;
  return h('span', { class: 'bar' }, h('span', { class: 'bar-zero' }), fill);
}

/** Activates `run` on click, Enter and Space (a list item acting as a button). */
function onActivate(el: HTMLElement, run: () => void): void {
  el.addEventListener('click', run);
  el.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      run();
    }
  });
}

export class FlowView {
  private result: ResultPayload | undefined;
  /** Each layer's map (undefined: the layer has none). */
  private maps: (FloatMap | undefined)[] = [];
  /** The layer whose detail is open. */
  private selected: number | undefined;

  constructor(
    private readonly list: HTMLElement,
    private readonly detailBox: HTMLElement,
    private readonly deps: FlowDeps,
  ) {}

  /** Lists the layers of a new result (keeps the open layer when it still exists). */
  render(r: ResultPayload): void {
    this.result = r;
    this.maps = r.layers.map((l) => (l.map ? unpackMap(l.map) : undefined));
    this.list.replaceChildren();
    const scale = Math.max(Math.abs(r.logit), ...r.layers.map((l) => Math.abs(l.relevanceSum)), 1e-12);
    const diverging = r.logit < 0 || r.relevanceSum < 0 || r.layers.some((l) => l.relevanceSum < 0);
    const bar = (v: number): HTMLElement => barEl(v, scale, diverging);
    this.list.append(
      h('li', { class: 'layer output' }, h('span', { class: 'op' }, 'Output'), h('span', { class: 'name' }, `logit of “${r.targetLabel}”`), bar(r.logit), h('span', { class: 'sum' }, formatValue(r.logit))),
    );
    r.layers.forEach((l, i) => {
      const row = h(
        'li',
        { class: 'layer', tabindex: '0', role: 'button', 'data-op': l.opType, 'data-index': String(i), title: `${l.name}\noutput ${l.outputShape.join('×')}` },
        h('span', { class: 'op' }, l.opType),
        h('span', { class: 'name' }, l.name, h('span', { class: 'rule muted' }, ` · ${l.rule}`)),
        bar(l.relevanceSum),
        h('span', { class: 'sum' }, formatValue(l.relevanceSum), tokenBadge(l)),
        h('span', { class: 'parts muted' }, `+${formatValue(l.positiveSum)} / ${formatValue(l.negativeSum)}`),
        l.map ? h('canvas', { class: 'thumb', 'data-index': String(i), width: '1', height: '1' }) : h('span', { class: 'thumb none' }),
      );
      onActivate(row, () => {
        this.selected = i;
        document.querySelectorAll('.layer.selected').forEach((el) => el.classList.remove('selected'));
        row.classList.add('selected');
        this.drawDetail();
      });
      this.list.append(row);
    });
    this.list.append(
      h('li', { class: 'layer input' }, h('span', { class: 'op' }, 'Input'), h('span', { class: 'name' }, 'sum of input relevance'), bar(r.relevanceSum), h('span', { class: 'sum' }, formatValue(r.relevanceSum))),
    );
    if (this.selected !== undefined && this.selected >= r.layers.length) this.selected = undefined;
  }

  /** Redraws the thumbnails (the list's and the token blocks', ./token-flow) and the open detail. */
  redraw(): void {
    document.querySelectorAll<HTMLCanvasElement>('canvas.thumb[data-index]').forEach((c) => {
      const map = this.maps[Number(c.dataset.index)];
      if (map) putPixels(c, map.width, map.height, renderMap(map, this.deps.mapView()));
    });
    this.drawDetail();
  }

  private drawDetail(): void {
    const box = this.detailBox;
    const r = this.result;
    const i = this.selected;
    if (!r || i === undefined || !r.layers[i]) {
      box.hidden = true;
      return;
    }
    const l = r.layers[i];
    const map = this.maps[i];
    let canvas = box.querySelector<HTMLCanvasElement>('canvas.large');
    const key = `${r.runId}:${i}`;
    if (box.dataset.key !== key || !canvas) {
      const close = h('vscode-button', { secondary: '', class: 'close' }, 'Close');
      close.addEventListener('click', () => {
        this.selected = undefined;
        document.querySelectorAll('.layer.selected').forEach((el) => el.classList.remove('selected'));
        box.hidden = true;
      });
      canvas = map ? h('canvas', { class: 'large', width: '1', height: '1' }) : null;
      box.replaceChildren(
        h('div', { class: 'detail-head' }, h('h2', {}, `${l.opType} · ${l.name}`), close),
        h(
          'p',
          { class: 'muted small' },
          `rule ${l.rule} · output ${l.outputShape.join('×')} · sum ${formatValue(l.relevanceSum)} (+${formatValue(l.positiveSum)} / ${formatValue(l.negativeSum)})` +
            (map ? ` · map ${map.width}×${map.height}` : ''),
        ),
        tokenNote(l) ?? '',
        h('p', { class: 'muted small detail-scale' }),
        canvas ?? h('p', { class: 'muted' }, 'No map for this layer.'),
        h('h3', {}, 'Top channels'),
        this.deps.channels(r, i),
      );
      box.dataset.key = key;
    }
    if (canvas && map) {
      const view = this.deps.mapView();
      putPixels(canvas, map.width, map.height, renderMap(map, view));
      const note = box.querySelector('.detail-scale');
      if (note) note.textContent = `Colours: ${describeScale(mapScale(map.data, view.percentile), view.gamma)} (this layer's own map).`;
    }
    box.hidden = false;
  }
}
