// The panel's view of a vision transformer: the class token's share beside each token layer of the
// relevance flow (the layer's map is its patch tokens on the patch grid, drawn like a CNN layer's
// map), the tokens in the layer detail, and the attention rule selector (shown for models with
// attention).
import { ATTENTION_MODES, type AttentionMode, type ResultPayload, type WireLayer } from '../src/protocol';
import { formatValue } from './colormap';
import { h, select } from './dom';

export const ATTENTION_HELP: Record<AttentionMode, string> = {
  cp: 'CP-LRP: the attention weights are constants',
  attnlrp: 'AttnLRP: softmax by gradient × input, Q·Kᵀ and A·V split in half',
};

/** A share in percent: whole percent from 10%, one decimal below (never "-0.0%"). */
export function formatShare(share: number): string {
  if (!Number.isFinite(share)) return '–';
  const pct = share * 100;
  const text = pct.toFixed(Math.abs(pct) >= 9.95 ? 0 : 1);
  return `${/^-0(\.0)?$/.test(text) ? text.slice(1) : text}%`;
}

/** The flow row's class-token badge ("CLS 42%"); null for layers without a class token. */
export function tokenBadge(l: WireLayer): HTMLElement | null {
  const t = l.tokens;
  if (!t || t.skip === 0 || !l.map) return null;
  const share = t.classShare;
  return h(
    'span',
    {
      class: 'cls-share',
      'data-share': share === undefined ? '' : String(share),
      title:
        `The class token holds ${share === undefined ? 'an undefined share (the token relevance sums to zero)' : formatShare(share)} of the relevance at this layer's input ` +
        `(R = ${formatValue(t.leading[0])}); the map shows the ${l.map.width * l.map.height} patch tokens on the ${l.map.width}×${l.map.height} patch grid.`,
    },
    `CLS ${share === undefined ? '–' : formatShare(share)}`,
  );
}

/** The layer detail's line about the tokens; null for layers without tokens. */
export function tokenNote(l: WireLayer): HTMLElement | null {
  const t = l.tokens;
  if (!t || !l.map) return null;
  const parts = [`Map: the patch tokens' relevance on the ${l.map.width}×${l.map.height} patch grid (one square per token)`];
  if (t.skip > 0)
    parts.push(
      `class token R = ${formatValue(t.leading[0])}` + (t.classShare !== undefined ? `, ${formatShare(t.classShare)} of this layer's relevance` : ''),
    );
  if (t.skip > 1) parts.push(`other leading tokens: ${t.leading.slice(1).map(formatValue).join(', ')}`);
  return h('p', { class: 'small token-note' }, `${parts.join(' · ')}.`);
}

/** The attention rule selector (hidden until a result says the model has attention). */
export function attentionField(value: AttentionMode, onChange: () => void): HTMLElement {
  const sel = select('attention', ATTENTION_MODES.map((m) => ({ value: m, label: m, description: ATTENTION_HELP[m] })), value);
  sel.addEventListener('change', onChange);
  return h(
    'label',
    { class: 'field', id: 'attention-field', hidden: '', title: 'How relevance passes attention (the rules\' "attention" key)' },
    h('span', {}, 'Attention'),
    sel,
  );
}

/** The selector's value, or `fallback` when it shows none. */
export function attentionValue(fallback: AttentionMode): AttentionMode {
  const v = (document.getElementById('attention') as { value?: string } | null)?.value;
  return (ATTENTION_MODES as readonly string[]).includes(v ?? '') ? (v as AttentionMode) : fallback;
}

/** The flow card's note on token layers and the per-block strip (hidden until a result has them). */
export function tokenFlowNote(): HTMLElement {
  return h('div', { id: 'token-flow' }, h('p', { class: 'muted small', id: 'token-flow-note', hidden: '' }), h('div', { class: 'token-blocks', id: 'token-blocks', hidden: '' }));
}

/**
 * The layers (indices into `layers`, output first) that end a transformer block: a pre-LN block
 * has two residual Adds on the token stream (after attention, after the MLP), so from the input
 * side every second token Add is a block's output. Empty when the token Adds do not pair up.
 */
export function blockOutputs(layers: readonly Pick<WireLayer, 'opType' | 'tokens'>[]): number[] {
  const adds = layers.map((l, i) => (l.opType === 'Add' && l.tokens ? i : -1)).filter((i) => i >= 0);
  if (adds.length === 0 || adds.length % 2 !== 0) return [];
  // output first: the 1st, 3rd, ... token Add is the last, second-to-last, ... block's output
  return adds.filter((_, k) => k % 2 === 0);
}

/** After a result: the attention selector (shown for models with attention) and the flow note. */
export function showTokens(r: ResultPayload): void {
  const field = document.getElementById('attention-field');
  if (field) field.hidden = r.hasAttention !== true;
  const sel = document.getElementById('attention') as { value?: string } | null;
  if (sel) sel.value = r.rules.attention;
  showBlocks(r);
  const note = document.getElementById('token-flow-note');
  const token = r.layers.find((l) => l.tokens && l.map);
  if (!note) return;
  note.hidden = !token;
  if (token?.map)
    note.textContent =
      `Token layers: the thumbnail is the patch tokens' relevance on the ${token.map.width}×${token.map.height} patch grid` +
      (token.tokens && token.tokens.skip > 0 ? '; CLS is the class token\'s share of the layer\'s relevance.' : '.');
}

/**
 * One cell per transformer block, from the input to the output: the relevance of the block's output
 * tokens on the patch grid (the flow's thumbnail canvas, drawn with the flow) and the class token's
 * share. A click opens that layer as its flow row does.
 */
function showBlocks(r: ResultPayload): void {
  const strip = document.getElementById('token-blocks');
  if (!strip) return;
  const blocks = blockOutputs(r.layers).reverse();
  strip.replaceChildren(
    ...(blocks.length ? [h('span', { class: 'muted small token-blocks-label' }, 'Block outputs:')] : []),
    ...blocks.map((i, k) => {
      const l = r.layers[i];
      const share = l.tokens?.classShare;
      const cell = h(
        'button',
        { class: 'token-block', 'data-index': String(i), title: `Block ${k + 1}: ${l.name} (${l.opType})\nrelevance ${formatValue(l.relevanceSum)}` },
        h('canvas', { class: 'thumb', 'data-index': String(i), width: '1', height: '1' }),
        h('span', {}, `block ${k + 1}`),
        l.tokens && l.tokens.skip > 0 ? h('span', { class: 'cls-block' }, `CLS ${share === undefined ? '–' : formatShare(share)}`) : null,
      );
      cell.addEventListener('click', () => {
        const row = document.querySelector<HTMLElement>(`#flow .layer[data-index="${i}"]`);
        row?.scrollIntoView({ block: 'nearest' });
        row?.click();
      });
      return cell;
    }),
  );
  strip.hidden = blocks.length === 0;
}
