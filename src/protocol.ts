// The one message protocol between the extension host (src/host/panel.ts) and the panel's
// webview (webview/main.ts). Imported by both sides: keep it free of `vscode` and Node imports.
//
// Binary data (relevance maps, image pixels) crosses as ArrayBuffer; `toFloat32` / `toUint8`
// accept whatever the transport hands over (ArrayBuffer, typed array, or a plain array).

import { ATTENTION_MODES, COMPOSITE_NAMES, DEFAULT_COMPARE_METHODS, type AttentionMode } from './engine/config';
import { DEFAULT_GAMMA, DEFAULT_OPACITY, DEFAULT_PERCENTILE, HEATMAP_VIEWS, MAX_GAMMA, MAX_PERCENTILE, MIN_GAMMA, MIN_PERCENTILE, type HeatmapView } from './engine/io/render';

/** Over the photo, the map alone, side by side (the engine's list, shared with the CLI). */
export { HEATMAP_VIEWS, type HeatmapView };

export const PROTOCOL_VERSION = 1;

// the composites are the engine's own list (config.ts has no dependencies, so the webview can share it)
export const COMPOSITES = COMPOSITE_NAMES;
export type Composite = (typeof COMPOSITES)[number];

/** How attention is explained (the rules' `attention` key): CP-LRP or AttnLRP. */
export { ATTENTION_MODES, type AttentionMode };

export const COLORMAP_NAMES = ['bwr', 'coldnhot', 'seismic', 'hot', 'gray'] as const;
export type ColormapName = (typeof COLORMAP_NAMES)[number];

export const SIGN_MODES = ['both', 'positive', 'negative'] as const;
export type SignMode = (typeof SIGN_MODES)[number];

export const EXPORT_KINDS = ['png', 'npy', 'json'] as const;
export type ExportKind = (typeof EXPORT_KINDS)[number];

/** Attribution methods beside LRP (the engine's METHOD_NAMES, checked by a unit test). */
export const ATTRIBUTION_METHODS = ['gradient', 'gradient-input', 'gradcam', 'cam', 'random'] as const;
export type AttributionMethod = (typeof ATTRIBUTION_METHODS)[number];

/** What the main view explains with: LRP (under the panel's composite) or another method. */
export const MAIN_METHODS = ['lrp', ...ATTRIBUTION_METHODS] as const;
export type MainMethod = (typeof MAIN_METHODS)[number];

/** An entry of the compare grid: an LRP composite or a method beside LRP. */
export const COMPARE_METHODS = [...COMPOSITES, ...ATTRIBUTION_METHODS] as const;
export type CompareMethod = (typeof COMPARE_METHODS)[number];

/** The default of the `lrpLens.compare` setting. */
export const DEFAULT_COMPARE: readonly CompareMethod[] = DEFAULT_COMPARE_METHODS;

/** Compare grid normalisation: each map by its own max |v|, or one max |v| over all cells. */
export const COMPARE_NORMS = ['own', 'shared'] as const;
export type CompareNorm = (typeof COMPARE_NORMS)[number];

export const PANEL_TABS = ['explain', 'compare', 'concepts'] as const;
export type PanelTab = (typeof PANEL_TABS)[number];

/** At most this many grid entries (one message, one setting). */
export const MAX_COMPARE = 24;

export const ERROR_ACTIONS = ['selectModel', 'openSettings', 'showOutput', 'retry'] as const;
export type ErrorAction = (typeof ERROR_ACTIONS)[number];

/** A 2-D float map, row-major. `data` is an ArrayBuffer holding height*width float32 values. */
export interface WireMap {
  width: number;
  height: number;
  data: ArrayBuffer;
}

/** Image pixels (RGB, 8 bit, row-major), possibly downscaled for display. */
export interface WireImage {
  width: number;
  height: number;
  /** Size of the original file's image (after orientation). */
  originalWidth: number;
  originalHeight: number;
  rgb: ArrayBuffer;
}

export interface Prediction {
  index: number;
  label: string;
  /** Softmax probability. */
  score: number;
  logit: number;
}

export interface WireLayer {
  name: string;
  opType: string;
  rule: string;
  outputShape: number[];
  relevanceSum: number;
  positiveSum: number;
  negativeSum: number;
  /** Channel-summed relevance at the layer's input; for a vision transformer's token layer, the patch tokens on the patch grid. */
  map?: WireMap;
  /** A vision transformer's token layer (its map is the patch grid). */
  tokens?: WireTokens;
}

export interface WireTokens {
  /** Leading tokens before the patch grid (class, distillation). */
  skip: number;
  /** Their relevance; index 0 is the class token. */
  leading: number[];
  /** The class token's share of the layer's token relevance (R_cls / sum of R_t); absent when that sum is zero. */
  classShare?: number;
}

/** The rule parameters the panel can change; the rest comes from the `lrpLens.rules` setting. */
export interface RuleChoice {
  composite: Composite;
  epsilon: number;
  gamma: number;
  /** cp or attnlrp: applies to models with attention. */
  attention: AttentionMode;
}

export interface ViewOptions {
  colormap: ColormapName;
  opacity: number;
  sign: SignMode;
  /** overlay (over the photo), alone (the map on its own background), side (photo | map). */
  mode: HeatmapView;
  /** Percentile of |R| drawn at full strength (50..100; 100 = the maximum). */
  percentile: number;
  /** Contrast: strength = (|R| / scale) ^ gamma (0.1..10). */
  gamma: number;
}

export const DEFAULT_VIEW: ViewOptions = {
  colormap: 'bwr',
  opacity: DEFAULT_OPACITY,
  sign: 'both',
  mode: 'overlay',
  percentile: DEFAULT_PERCENTILE,
  gamma: DEFAULT_GAMMA,
};

export function isPercentile(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= MIN_PERCENTILE && v <= MAX_PERCENTILE;
}

export function isHeatmapGamma(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= MIN_GAMMA && v <= MAX_GAMMA;
}

export interface ResultPayload {
  /** Increases with every run; the webview ignores stale details. */
  runId: number;
  model: string;
  backend: string;
  target: number;
  targetLabel: string;
  logit: number;
  relevanceSum: number;
  predictions: Prediction[];
  rules: RuleChoice;
  /** 'lrp' (under `rules`) or the method beside LRP that made the map. */
  method: MainMethod;
  /** Channel-summed input relevance at the model's input resolution. */
  relevance: WireMap;
  layers: WireLayer[];
  /** The model has attention: the panel shows the attention rule selector. */
  hasAttention?: boolean;
  timings: { loadMs?: number; forwardMs?: number; lrpMs: number; totalMs: number };
  /** Where the preprocessing and the labels came from (setting, file name, default) and the preprocessing in one line. */
  sources?: { preprocessing: string; labels: string; description: string };
  /** What the model saw: the input picture after resize and crop, before normalisation (RGB, 8 bit). */
  modelInput?: { width: number; height: number; rgb: ArrayBuffer };
  /**
   * The part of the original photo the model input covers, in original pixels (absent: the whole
   * photo). With a crop the heatmap is drawn there and the rest of the photo dimmed.
   */
  region?: { x: number; y: number; width: number; height: number };
}

export interface PanelError {
  /** Short title, e.g. "Unsupported operator". */
  title: string;
  message: string;
  actions: ErrorAction[];
}

export interface PanelNotice {
  kind: 'cancelled' | 'modelChanged';
  message: string;
  /** 'explain': the notice offers to explain again. */
  action?: 'explain';
}

// ---------- concepts (CRP): the layer detail's channels and the concept atlas (webview/concepts.ts) ----------

/** Where a concepts request comes from: the layer detail (with reference crops) or the atlas tab. */
export const CONCEPT_VIEWS = ['detail', 'atlas'] as const;
export type ConceptView = (typeof CONCEPT_VIEWS)[number];

/** The layers concepts condition on, by operator (the engine's list). */
export { CONCEPT_LAYER_OPS } from './explain/server/protocol';

/** At most this many channels per concepts request. */
export const MAX_CONCEPT_CHANNELS = 32;

export interface ConceptChannelPayload {
  channel: number;
  /** Relevance at the layer through the channel, and its share of the layer's relevance. */
  relevance: number;
  share: number;
  /** Sums of the positive and the negative conditional input relevance. */
  positiveSum: number;
  negativeSum: number;
  /** The channel's conditional input relevance at the model's input size. */
  map: WireMap;
}

export interface ConceptsPayload {
  runId: number;
  /** The layer's index in the result's `layers`. */
  index: number;
  view: ConceptView;
  layer: string;
  opType: string;
  channelCount: number;
  layerRelevance: number;
  channels: ConceptChannelPayload[];
  ms: number;
}

/** A channel's reference examples from an indexed folder (relevance maximisation). */
export interface ConceptRefsPayload {
  runId: number;
  index: number;
  /** The indexed folder; absent: no index of this model and layer. */
  folder?: string;
  /** Why the index cannot be used (out of date). */
  stale?: string;
  /** Could not compute the crops. */
  error?: string;
  channels: { channel: number; refs: { file: string; relevance: number; crop: WireThumb }[] }[];
}

/** State the webview keeps with `setState` so the serializer can restore the panel. */
export interface PersistedState {
  imagePath: string;
  view?: Partial<ViewOptions>;
  /** Rule parameters chosen in the panel (not the setting's). */
  rules?: Partial<RuleChoice>;
  /** The main view's method when not LRP. */
  method?: MainMethod;
  /** The visible view. */
  tab?: PanelTab;
  compareNorm?: CompareNorm;
  /** The concept atlas's layer (by name) and channel count. */
  atlasLayer?: string;
  atlasTop?: number;
}

/** One cell of the compare grid. */
export interface CompareCell {
  /** Increases with every compare request; the webview drops cells of older requests. */
  compareId: number;
  method: CompareMethod;
  target: number;
  /** The attribution at the model's input size. */
  map: WireMap;
  logit: number;
  ms: number;
  /** gradcam / cam: the feature-map layer. */
  layer?: string;
}

/** One method's region perturbation result (the engine's MethodScore). */
export interface FaithfulnessScore {
  name: string;
  aopc?: number;
  /** f(x_0) .. f(x_K): the target logit before and after each perturbation step. */
  curve?: number[];
  error?: string;
}

export const EVAL_STATES = ['running', 'done', 'cancelled', 'error'] as const;
export type EvalState = (typeof EVAL_STATES)[number];

export interface FaithfulnessPayload {
  evalId: number;
  state: EvalState;
  target: number;
  targetLabel: string;
  steps: number;
  patch: number;
  /** Patches replaced by the last step, of `patchCount`. */
  patches: number;
  patchCount: number;
  /** Share of the image's pixels replaced by the last step. */
  share: number;
  /** The methods finished so far, in request order. */
  methods: FaithfulnessScore[];
  /** How many methods are evaluated in all. */
  total: number;
  message?: string;
}

// ---------- host -> webview ----------

export type HostMessage =
  | {
      type: 'init';
      version: number;
      imagePath: string;
      imageName: string;
      view: ViewOptions;
      rules: RuleChoice;
      trusted: boolean;
    }
  | { type: 'image'; image: WireImage }
  | { type: 'busy'; message: string }
  | { type: 'result'; result: ResultPayload }
  | { type: 'error'; error: PanelError }
  | { type: 'view'; view: ViewOptions }
  /** The `lrpLens.compare` setting (sent with init and whenever it changes). */
  | { type: 'compareMethods'; methods: CompareMethod[]; error?: string; /** Settings changed: computed cells are out of date. */ stale?: boolean }
  | { type: 'compareCell'; cell: CompareCell }
  | { type: 'compareCellError'; compareId: number; method: CompareMethod; message: string }
  | { type: 'faithfulness'; result: FaithfulnessPayload }
  /** A line above the result: what Cancel did, or that the model changed on disk (with Explain Again). */
  | { type: 'notice'; notice: PanelNotice }
  /** How far one float32 ulp of input noise moves run `runId`'s relevance (or why it could not be checked). */
  | { type: 'stability'; runId: number; ulpRelL2?: number; draws?: number; unstable?: boolean; error?: string }
  | { type: 'concepts'; result: ConceptsPayload }
  | { type: 'conceptsError'; runId: number; index: number; view: ConceptView; message: string }
  | { type: 'conceptRefs'; refs: ConceptRefsPayload }
  /** A folder was indexed for concepts: reference examples may have changed. */
  | { type: 'conceptIndexChanged' };

// ---------- webview -> host ----------

export type WebviewMessage =
  | { type: 'ready' }
  | { type: 'explain'; target?: number; rules?: Partial<RuleChoice>; method?: MainMethod }
  | { type: 'export'; kind: ExportKind; view: ViewOptions }
  | { type: 'action'; action: ErrorAction }
  | { type: 'viewChanged'; view: ViewOptions }
  /** Compute the grid cells of `methods` for `target` (replaces a running compare request). */
  | { type: 'compare'; compareId: number; methods: CompareMethod[]; target?: number }
  /** The user added or removed grid entries: store them in `lrpLens.compare`. */
  | { type: 'setCompareMethods'; methods: CompareMethod[] }
  /** Show one method in the main view: a composite switches LRP to it, a method replaces LRP. */
  | { type: 'openMethod'; method: CompareMethod; target?: number }
  /** Region perturbation (AOPC) of the compared methods. */
  | { type: 'evaluate'; methods: CompareMethod[]; target?: number }
  | { type: 'cancelEvaluate' }
  /** Check the float32 stability of the LRP result of run `runId`. */
  | { type: 'stability'; runId: number }
  /** The `top` channels of layer `index` of run `runId` with their conditional maps (CRP). */
  | { type: 'concepts'; runId: number; index: number; view: ConceptView; top: number }
  /** The reference crops of `channels` of layer `index` of run `runId` (from an indexed folder). */
  | { type: 'conceptRefs'; runId: number; index: number; channels: number[] };

// ---------- validation of what arrives from the webview (untrusted input) ----------

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isFiniteNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function isNonNegInt(v: unknown): v is number {
  return isFiniteNum(v) && Number.isInteger(v) && v >= 0;
}

function oneOf<T extends string>(list: readonly T[], v: unknown): v is T {
  return typeof v === 'string' && (list as readonly string[]).includes(v);
}

/** View options from the webview; mode, percentile and gamma default when missing, never when wrong. */
export function parseViewOptions(v: unknown): ViewOptions | undefined {
  if (!isObj(v)) return undefined;
  if (!oneOf(COLORMAP_NAMES, v.colormap) || !oneOf(SIGN_MODES, v.sign)) return undefined;
  if (!isFiniteNum(v.opacity) || v.opacity < 0 || v.opacity > 1) return undefined;
  if (v.mode !== undefined && !oneOf(HEATMAP_VIEWS, v.mode)) return undefined;
  if (v.percentile !== undefined && !isPercentile(v.percentile)) return undefined;
  if (v.gamma !== undefined && !isHeatmapGamma(v.gamma)) return undefined;
  return {
    colormap: v.colormap,
    sign: v.sign,
    opacity: v.opacity,
    mode: (v.mode as HeatmapView | undefined) ?? DEFAULT_VIEW.mode,
    percentile: (v.percentile as number | undefined) ?? DEFAULT_VIEW.percentile,
    gamma: (v.gamma as number | undefined) ?? DEFAULT_VIEW.gamma,
  };
}

function parseRuleChoice(v: unknown): Partial<RuleChoice> | undefined {
  if (!isObj(v)) return undefined;
  const out: Partial<RuleChoice> = {};
  if (v.composite !== undefined) {
    if (!oneOf(COMPOSITES, v.composite)) return undefined;
    out.composite = v.composite;
  }
  if (v.attention !== undefined) {
    if (!oneOf(ATTENTION_MODES, v.attention)) return undefined;
    out.attention = v.attention;
  }
  for (const k of ['epsilon', 'gamma'] as const) {
    if (v[k] === undefined) continue;
    const n = v[k];
    if (!isFiniteNum(n) || n < 0) return undefined;
    out[k] = n;
  }
  return out;
}

/** A list of grid entries: known names, no duplicates, at most MAX_COMPARE. */
export function parseCompareMethods(v: unknown): CompareMethod[] | undefined {
  if (!Array.isArray(v) || v.length > MAX_COMPARE) return undefined;
  const out: CompareMethod[] = [];
  for (const m of v) {
    if (!oneOf(COMPARE_METHODS, m) || out.includes(m)) return undefined;
    out.push(m);
  }
  return out;
}

function optTarget(v: unknown): { ok: boolean; target?: number } {
  if (v === undefined) return { ok: true };
  return isNonNegInt(v) ? { ok: true, target: v } : { ok: false };
}

/** Checks a message from the webview; returns undefined for anything malformed. */
export function parseWebviewMessage(raw: unknown): WebviewMessage | undefined {
  if (!isObj(raw) || typeof raw.type !== 'string') return undefined;
  switch (raw.type) {
    case 'ready':
      return { type: 'ready' };
    case 'explain': {
      const msg: WebviewMessage = { type: 'explain' };
      if (raw.target !== undefined) {
        if (!isNonNegInt(raw.target)) return undefined;
        msg.target = raw.target;
      }
      if (raw.rules !== undefined) {
        const rules = parseRuleChoice(raw.rules);
        if (!rules) return undefined;
        msg.rules = rules;
      }
      if (raw.method !== undefined) {
        if (!oneOf(MAIN_METHODS, raw.method)) return undefined;
        msg.method = raw.method;
      }
      return msg;
    }
    case 'export': {
      const view = parseViewOptions(raw.view);
      if (!oneOf(EXPORT_KINDS, raw.kind) || !view) return undefined;
      return { type: 'export', kind: raw.kind, view };
    }
    case 'action':
      return oneOf(ERROR_ACTIONS, raw.action) ? { type: 'action', action: raw.action } : undefined;
    case 'stability':
      return isNonNegInt(raw.runId) ? { type: 'stability', runId: raw.runId } : undefined;
    case 'viewChanged': {
      const view = parseViewOptions(raw.view);
      return view ? { type: 'viewChanged', view } : undefined;
    }
    case 'compare': {
      const methods = parseCompareMethods(raw.methods);
      const t = optTarget(raw.target);
      if (!methods || !t.ok || !isNonNegInt(raw.compareId)) return undefined;
      return { type: 'compare', compareId: raw.compareId, methods, ...(t.target !== undefined ? { target: t.target } : {}) };
    }
    case 'setCompareMethods': {
      const methods = parseCompareMethods(raw.methods);
      return methods ? { type: 'setCompareMethods', methods } : undefined;
    }
    case 'openMethod': {
      const t = optTarget(raw.target);
      if (!oneOf(COMPARE_METHODS, raw.method) || !t.ok) return undefined;
      return { type: 'openMethod', method: raw.method, ...(t.target !== undefined ? { target: t.target } : {}) };
    }
    case 'evaluate': {
      const methods = parseCompareMethods(raw.methods);
      const t = optTarget(raw.target);
      if (!methods || methods.length === 0 || !t.ok) return undefined;
      return { type: 'evaluate', methods, ...(t.target !== undefined ? { target: t.target } : {}) };
    }
    case 'cancelEvaluate':
      return { type: 'cancelEvaluate' };
    case 'concepts':
      if (!isNonNegInt(raw.runId) || !isNonNegInt(raw.index) || !oneOf(CONCEPT_VIEWS, raw.view)) return undefined;
      if (!isNonNegInt(raw.top) || raw.top < 1 || raw.top > MAX_CONCEPT_CHANNELS) return undefined;
      return { type: 'concepts', runId: raw.runId, index: raw.index, view: raw.view, top: raw.top };
    case 'conceptRefs': {
      const ch = raw.channels;
      if (!isNonNegInt(raw.runId) || !isNonNegInt(raw.index) || !Array.isArray(ch) || ch.length < 1 || ch.length > MAX_CONCEPT_CHANNELS) return undefined;
      if (!ch.every(isNonNegInt)) return undefined;
      return { type: 'conceptRefs', runId: raw.runId, index: raw.index, channels: [...ch] };
    }
    default:
      return undefined;
  }
}

/** Checks the state VS Code hands back to the serializer. */
export function parsePersistedState(raw: unknown): PersistedState | undefined {
  if (!isObj(raw) || typeof raw.imagePath !== 'string' || raw.imagePath.length === 0) return undefined;
  const state: PersistedState = { imagePath: raw.imagePath };
  if (isObj(raw.view)) {
    const view: Partial<ViewOptions> = {};
    if (oneOf(COLORMAP_NAMES, raw.view.colormap)) view.colormap = raw.view.colormap;
    if (oneOf(SIGN_MODES, raw.view.sign)) view.sign = raw.view.sign;
    if (isFiniteNum(raw.view.opacity) && raw.view.opacity >= 0 && raw.view.opacity <= 1)
      view.opacity = raw.view.opacity;
    if (oneOf(HEATMAP_VIEWS, raw.view.mode)) view.mode = raw.view.mode;
    if (isPercentile(raw.view.percentile)) view.percentile = raw.view.percentile;
    if (isHeatmapGamma(raw.view.gamma)) view.gamma = raw.view.gamma;
    state.view = view;
  }
  if (raw.rules !== undefined) {
    const rules = parseRuleChoice(raw.rules);
    if (rules) state.rules = rules;
  }
  if (oneOf(MAIN_METHODS, raw.method)) state.method = raw.method;
  if (oneOf(PANEL_TABS, raw.tab)) state.tab = raw.tab;
  if (oneOf(COMPARE_NORMS, raw.compareNorm)) state.compareNorm = raw.compareNorm;
  if (typeof raw.atlasLayer === 'string' && raw.atlasLayer) state.atlasLayer = raw.atlasLayer;
  if (isNonNegInt(raw.atlasTop) && raw.atlasTop >= 1 && raw.atlasTop <= MAX_CONCEPT_CHANNELS) state.atlasTop = raw.atlasTop;
  return state;
}

// ---------- binary helpers ----------

/** A standalone ArrayBuffer holding exactly the values of `a` (never a view on a larger buffer). */
export function float32Buffer(a: ArrayLike<number>): ArrayBuffer {
  const out = new Float32Array(a.length);
  out.set(a);
  return out.buffer;
}

export function packMap(map: { width: number; height: number; data: ArrayLike<number> }): WireMap {
  if (map.data.length !== map.width * map.height)
    throw new Error(`map of ${map.width}x${map.height} has ${map.data.length} values`);
  return { width: map.width, height: map.height, data: float32Buffer(map.data) };
}

/** Reads float32 values from whatever the transport produced. */
export function toFloat32(data: unknown): Float32Array {
  if (data instanceof Float32Array) return data;
  if (data instanceof ArrayBuffer) return new Float32Array(data);
  if (ArrayBuffer.isView(data)) {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return new Float32Array(bytes.slice().buffer);
  }
  if (Array.isArray(data)) return Float32Array.from(data as number[]);
  if (isObj(data)) {
    // A typed array that went through JSON: {"0": v0, "1": v1, ...}
    const n = Object.keys(data).length;
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = Number(data[String(i)]);
    return out;
  }
  return new Float32Array(0);
}

export function toUint8(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data)) return Uint8Array.from(data as number[]);
  if (isObj(data)) {
    const n = Object.keys(data).length;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = Number(data[String(i)]);
    return out;
  }
  return new Uint8Array(0);
}

export function unpackMap(map: WireMap): { width: number; height: number; data: Float32Array } {
  const data = toFloat32(map.data);
  if (data.length !== map.width * map.height)
    throw new Error(`relevance map of ${map.width}x${map.height} arrived with ${data.length} values`);
  return { width: map.width, height: map.height, data };
}

// ---------- the folder grid (src/host/folderPanel.ts <-> webview/folder.ts) ----------

export const FOLDER_PROTOCOL_VERSION = 1;

/** A small RGB image (8 bit, row-major): the photo with its heatmap blended in. */
export interface WireThumb {
  width: number;
  height: number;
  rgb: ArrayBuffer;
}

/** The outcome for one image of the folder. */
export interface FolderItemResult {
  /** Top-1 class and its softmax probability. */
  label: string;
  score: number;
  /** The explained class (the top-1 class). */
  target: number;
  relevanceSum: number;
  timeMs: number;
  thumb: WireThumb;
}

export const FOLDER_RUN_STATES = ['starting', 'running', 'done', 'cancelled', 'error'] as const;
export type FolderRunState = (typeof FOLDER_RUN_STATES)[number];

export type FolderHostMessage =
  | { type: 'init'; version: number; folderPath: string; folderName: string; files: string[]; runId: number }
  | { type: 'status'; runId: number; state: FolderRunState; done: number; failed: number; total: number; message?: string; model?: string }
  | { type: 'item'; runId: number; index: number; result: FolderItemResult }
  | { type: 'itemError'; runId: number; index: number; error: PanelError }
  /** Concept indexing of the folder (Index Concepts): progress, outcome. */
  | { type: 'indexStatus'; state: IndexState; message: string; done?: number; total?: number; layer?: string };

export const INDEX_STATES = ['running', 'done', 'cancelled', 'error'] as const;
export type IndexState = (typeof INDEX_STATES)[number];

export type FolderWebviewMessage =
  | { type: 'ready' }
  /** Open the full explain panel of the image at `index` of the init message's `files`. */
  | { type: 'open'; index: number }
  | { type: 'cancel' }
  | { type: 'rerun' }
  /** Index the folder for concepts (the host asks for the layer). */
  | { type: 'indexConcepts' }
  | { type: 'cancelIndex' };

/** What the folder webview keeps with `setState` for the serializer. */
export interface FolderPersistedState {
  folderPath: string;
}

export function parseFolderWebviewMessage(raw: unknown): FolderWebviewMessage | undefined {
  if (!isObj(raw) || typeof raw.type !== 'string') return undefined;
  switch (raw.type) {
    case 'ready':
    case 'cancel':
    case 'rerun':
    case 'indexConcepts':
    case 'cancelIndex':
      return { type: raw.type };
    case 'open':
      return isNonNegInt(raw.index) ? { type: 'open', index: raw.index } : undefined;
    default:
      return undefined;
  }
}

export function parseFolderPersistedState(raw: unknown): FolderPersistedState | undefined {
  if (!isObj(raw) || typeof raw.folderPath !== 'string' || raw.folderPath.length === 0) return undefined;
  return { folderPath: raw.folderPath };
}
