// The one protocol between the extension host (src/host/engineClient.ts) and the engine process
// (src/explain/server/main.ts): typed requests, their results, progress and cancellation.
// Separate from the webview protocol (src/protocol.ts). Type-only imports; no runtime code that
// pulls in the engine, so the host can import it without loading onnxruntime.
//
// Transport: Node's IPC channel with `serialization: 'advanced'` (V8's structured clone): typed
// arrays cross as their bytes, never as JSON number arrays. `npm run bench` measures what the
// boundary adds (`engine-boundary`).
import type { RulesConfig } from '../../engine/config';
import type { BlendOptions, ColormapName, HeatmapMode, HeatmapView } from '../../engine/io/heatmap';
import type { Layout } from '../../engine/graph/graph';
import type { Region } from '../../engine/io/placement';
import type { PreprocessingSpec } from '../../engine/io/preprocessing-spec';
import type { MethodScore } from '../evaluate';

/**
 * What fixes a loaded model and the input preparation. Paths are absolute, already resolved by the
 * host. The engine resolves the rest (explain/model-config.ts): the setting's preprocessing when
 * `preprocessingFromSetting`, else the model's preprocessing.json, what the model folder carries
 * (Hugging Face, timm, ONNX metadata), else `preprocessing` as the default; the labels likewise.
 */
export interface ModelSpec {
  modelPath: string;
  backend: 'auto' | 'onnxruntime' | 'tfjs';
  /** The setting lrpLens.preprocessing (its defaults when unset). */
  preprocessing: PreprocessingSpec;
  /** The user set lrpLens.preprocessing: it wins over the files beside the model. */
  preprocessingFromSetting?: boolean;
  /** An explicit labels file (one per line, JSON array or object); none: found beside the model, else class indices. */
  labelsPath?: string;
  rules: RulesConfig;
}

/** Where the preprocessing and the labels came from, the preprocessing in one line, files found but not used. */
export interface ModelSources {
  preprocessing: string;
  labels: string;
  description: string;
  warnings: string[];
}

/** How a heatmap picture is drawn (lrpLens.colormap and lrpLens.heatmap.*). */
export interface PictureOptions {
  colormap: ColormapName;
  view: HeatmapView;
  percentile: number;
  gamma: number;
}

export interface ImageSpec extends ModelSpec {
  imagePath: string;
  /** 0-based class; default the top class. */
  target?: number;
}

/** A float map, row-major: `data` holds height*width values. */
export interface MapData {
  width: number;
  height: number;
  data: Float32Array;
}

export interface ModelStat {
  size: number;
  mtimeMs: number;
}

export interface LayerResult {
  name: string;
  opType: string;
  rule: string;
  outputShape: number[];
  relevanceSum: number;
  positiveSum: number;
  negativeSum: number;
  /** Channel-summed relevance at the layer's input; for a vision transformer's token layer, the patch tokens on the patch grid. */
  map?: MapData;
  channelSums?: Float32Array;
  /** A vision transformer's token layer: the leading tokens' relevance (index 0: the class token) and the class token's share. */
  tokens?: TokenInfo;
}

/** What a token layer adds to its map (the patch grid): see explain/tokens.ts. */
export interface TokenInfo {
  /** Leading tokens before the patch grid (class, distillation). */
  skip: number;
  leading: number[];
  classShare?: number;
}

export interface ExplainResult {
  modelPath: string;
  /** Size and mtime of the model file the result was computed with. */
  modelStat: ModelStat;
  /** The model was (re)loaded for this request, in ms; undefined: it was cached. */
  loadMs?: number;
  /** The model had been loaded before and changed on disk since: this request reloaded it. */
  reloaded?: boolean;
  backend: string;
  method: string;
  target: number;
  targetLabel: string;
  logit: number;
  relevanceSum: number;
  predictions: { index: number; label: string; score: number; logit: number }[];
  /** The rules with input bounds filled in. */
  rules: RulesConfig;
  /** The preprocessing as resolved for this model, and where it and the labels came from. */
  preprocessing: PreprocessingSpec;
  sources: ModelSources;
  /** The picture the model saw (resized, cropped). */
  modelInput: { width: number; height: number; rgb: Uint8Array };
  /** The part of the photo the model saw, in photo pixels; absent when it saw the whole photo. */
  region?: Region;
  /** Channel-summed input relevance at the model's input size. */
  map: MapData;
  /** The input relevance in the model's layout (batch axis included), for the .npy export. */
  relevance: { dims: number[]; layout: Layout; data: Float32Array };
  layers: LayerResult[];
  /** The model has attention (a Softmax inside the network): the rules' `attention` key applies. */
  hasAttention: boolean;
  /** The photo, its longest side at most `displayMaxSide`. */
  image: { width: number; height: number; originalWidth: number; originalHeight: number; rgb: Uint8Array };
  /** The summary JSON export (the CLI's --out-json shape plus the image). */
  summaryJson: string;
  timings: { forwardMs?: number; lrpMs: number; totalMs: number };
}

export interface AttributeResult {
  target: number;
  map: MapData;
  logit: number;
  ms: number;
  layer?: string;
}

export interface EvaluateResult {
  target: number;
  targetLabel: string;
  steps: number;
  patch: number;
  /** Patches replaced by the last step, and in all. */
  patches: number;
  patchCount: number;
  /** Share of the image's pixels replaced by the last step. */
  share: number;
  methods: MethodScore[];
}

export interface ThumbnailResult {
  label: string;
  score: number;
  target: number;
  relevanceSum: number;
  thumb: { width: number; height: number; rgb: Uint8Array };
}

/** One channel of a layer conditioned on (CRP): its share of the layer's relevance and its conditional input map. */
export interface ConceptChannel {
  channel: number;
  /** The relevance at the layer through this channel. */
  relevance: number;
  /** relevance / the layer's relevance (0 when the layer carries none). */
  share: number;
  /** Sums of the positive and the negative conditional input relevance. */
  positiveSum: number;
  negativeSum: number;
  /** The conditional input relevance, channel-summed, at the model's input size. */
  map: MapData;
}

export interface ConceptMapsResult {
  layer: string;
  opType: string;
  /** Channels of the layer. */
  channelCount: number;
  target: number;
  /** The layer's relevance (all channels): the shares' denominator. */
  layerRelevance: number;
  /** Largest first (top-k), or in the order asked for. */
  channels: ConceptChannel[];
  /** The masks ran as one batched program (false: one run per channel). */
  batched: boolean;
  ms: number;
}

/** The operators whose layers concepts condition on (their output's channel axis). */
export const CONCEPT_LAYER_OPS: readonly string[] = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'];

/** A layer the engine can condition on: its name, operator and channel count. */
export interface ConceptLayer {
  name: string;
  opType: string;
  channels: number;
}

export interface ConceptIndexResult {
  layer: string;
  folder: string;
  /** Where the index (concepts-cache.json and index.json) was written. */
  indexDir: string;
  images: number;
  errors: { file: string; error: string }[];
  /** The scores came from a valid cache (nothing was run). */
  cached: boolean;
  ms: number;
}

/** A channel's reference examples (relevance maximisation over an indexed folder). */
export interface ConceptReferences {
  channel: number;
  refs: { file: string; target: number; relevance: number; crop: { width: number; height: number; rgb: Uint8Array } }[];
}

export interface ConceptReferencesResult {
  /** The indexed folder found for the model and layer; absent: no index. */
  folder?: string;
  /** Why the index found cannot be used (folder or model changed since): index again. */
  stale?: string;
  images?: number;
  channels: ConceptReferences[];
}

export interface EngineStatus {
  pid: number;
  rssMb: number;
  /** Loaded models: path, backend and the file stat they were loaded from. */
  models: { modelPath: string; backend: string; stat: ModelStat }[];
}

/** Every request and what it answers with. */
export interface EngineRequests {
  /** The main panel explanation: LRP (method 'lrp' under `rules`) or a method beside LRP. */
  explain: { req: { spec: ImageSpec; method: string; displayMaxSide: number }; res: ExplainResult };
  /** One compare-grid cell. */
  attribute: { req: { spec: ImageSpec; method: string }; res: AttributeResult };
  /** Region perturbation of one method; without `spec.target` the top class. */
  evaluate: { req: { spec: ImageSpec; method: string }; res: EvaluateResult };
  /** One-ulp input noise against the given base relevance (of `spec.target`). */
  stability: { req: { spec: ImageSpec & { target: number }; base: Float32Array }; res: { ulpRelL2: number; draws: number; unstable: boolean } };
  /** Loads the model (the folder view's first step); answers what was loaded and where its preprocessing and labels came from. */
  load: { req: { spec: ModelSpec }; res: { backend: string; modelStat: ModelStat; loadMs?: number; sources: ModelSources } };
  /**
   * A folder-grid thumbnail: the photo (at most `maxSide` pixels) with its heatmap drawn as
   * `picture` says, on the part the model saw (the rest dimmed); wider than the photo in the side view.
   */
  thumbnail: { req: { spec: ImageSpec; picture: PictureOptions; maxSide: number }; res: ThumbnailResult };
  /** The heatmap PNG export: the photo with `map` (at the model's input size) drawn on `region` (the whole photo when absent). */
  heatmapPng: {
    req: { imagePath: string; map: MapData; region?: Region; options: BlendOptions & { colormap: ColormapName; mode: HeatmapMode } };
    res: { png: Uint8Array };
  };
  status: { req: Record<string, never>; res: EngineStatus };
  /**
   * Concepts (CRP): the conditional maps of `channels` of `layer`, or of its `top` channels by
   * relevance, for the explanation of `spec` (its target; default the top class).
   */
  conceptMaps: { req: { spec: ImageSpec; layer: string; top?: number; channels?: number[] }; res: ConceptMapsResult };
  /** The layers the model can be conditioned on. */
  conceptLayers: { req: { spec: ModelSpec }; res: { layers: ConceptLayer[] } };
  /**
   * Relevance maximisation over a folder: each image's relevance per channel of `layer` for its
   * predicted class, cached under `indexRoot` (one folder per model, layer and image folder).
   */
  conceptIndex: { req: { spec: ModelSpec; folder: string; layer: string; indexRoot: string }; res: ConceptIndexResult };
  /** For `channels` of `layer`: the `perChannel` images of the newest valid index under `indexRoot` where each carries the most relevance, with crops. */
  conceptReferences: {
    req: { spec: ModelSpec; layer: string; channels: number[]; perChannel: number; maxSide: number; indexRoot: string };
    res: ConceptReferencesResult;
  };
}

export type RequestKind = keyof EngineRequests;
export type RequestOf<K extends RequestKind> = EngineRequests[K]['req'];
export type ResultOf<K extends RequestKind> = EngineRequests[K]['res'];

/** An error as it crosses the boundary: its name decides how the panel titles it. */
export interface WireError {
  name: string;
  message: string;
}

/** Host -> engine. */
export type ToEngine =
  | { type: 'request'; id: number; kind: RequestKind; body: RequestOf<RequestKind> }
  /** Stop request `id` at its next step; the engine answers with `cancelled` (or its result, if it was done). */
  | { type: 'cancel'; id: number };

/** Engine -> host. */
export type FromEngine =
  | { type: 'ready'; pid: number }
  | { type: 'progress'; id: number; message: string }
  | { type: 'result'; id: number; result: ResultOf<RequestKind> }
  | { type: 'error'; id: number; error: WireError }
  | { type: 'cancelled'; id: number };

/** Error names the host treats specially (see host/errors.ts). */
export const ENGINE_ERRORS = {
  /** The model file changed on disk while it was loaded or used. */
  modelChanged: 'ModelChangedError',
  /** The model does not fit the engine's memory limit. */
  memory: 'EngineMemoryError',
  /** The engine process ended (crash, native abort, out of memory, killed). */
  crashed: 'EngineCrashedError',
  cancelled: 'CancelledError',
} as const;

/** Estimated memory need of a model before loading it: the engine's graph, the program's weights, the runtime. */
export function estimatedModelMb(fileBytes: number): number {
  return Math.ceil((2 * fileBytes) / 2 ** 20) + 256;
}
