// Runs explanations for the panels by sending requests to the engine process (engineClient.ts):
// builds the request from the settings, and turns the engine's answer into what the panel shows
// and the exports write. Model loading, the model folder's preprocessing and labels (with their
// sources), preprocessing and LRP all happen in the engine process. No `vscode` import.
import * as path from 'node:path';
import type { RulesConfig } from '../engine/config';
import type {
  AttributeResult,
  ConceptIndexResult,
  ConceptMapsResult,
  ConceptReferencesResult,
  EvaluateResult,
  ImageSpec,
  LayerResult,
  ModelSources,
  ModelSpec,
  ModelStat,
  PictureOptions,
  RequestKind,
  RequestOf,
  ResultOf,
  ThumbnailResult,
} from '../explain/server/protocol';
import type { CompareMethod, ConceptChannelPayload, MainMethod, ResultPayload, ViewOptions, WireImage, WireMap } from '../protocol';
import { CancelledError } from './errors';
import type { CancelOutcome, Engine, EngineCall } from './engineClient';
import { ruleChoiceOf, type Backend, type Preprocessing } from './settings';

/** Longest side of the photo sent to the panel. */
export const DISPLAY_MAX_SIDE = 768;

/** Reference examples per channel in the layer detail, and their longest side in pixels. */
export const REFERENCES_PER_CHANNEL = 4;
export const REFERENCE_MAX_SIDE = 96;

export interface RunRequest {
  imagePath: string;
  modelPath: string;
  labelsPath?: string;
  backend: Backend;
  preprocessing: Preprocessing;
  /** When false, a `preprocessing.json` beside the model replaces `preprocessing`. */
  preprocessingFromSetting?: boolean;
  rules: RulesConfig;
  target?: number;
  /** Default 'lrp' (under `rules`). */
  method?: MainMethod;
}

/** Everything a finished run leaves behind: what the panel shows and what the exports write. */
export interface RunOutput {
  payload: Omit<ResultPayload, 'runId'>;
  image: WireImage;
  /** The request as run: rules with input bounds. */
  request: RunRequest;
  /** Where the preprocessing and the labels came from (the engine resolved them). */
  sources: ModelSources;
  target: number;
  /** The input relevance in the model's layout (the .npy export). */
  relevance: { dims: number[]; data: Float32Array };
  summaryJson: string;
  modelStat: ModelStat;
  /** The engine reloaded the model because the file changed on disk. */
  reloaded: boolean;
  logLine: string;
}

/** A request on its way: its result, and Cancel (see EngineCall). */
export interface Job<T> {
  result: Promise<T>;
  cancel(hard?: boolean): Promise<CancelOutcome>;
}

/** The bytes of a typed array as their own ArrayBuffer (no copy when the array fills its buffer). */
const bytesOf = (a: Uint8Array): ArrayBuffer =>
  a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? (a.buffer as ArrayBuffer) : (a.slice().buffer as ArrayBuffer);

const toWire = (m: { width: number; height: number; data: Float32Array }): WireMap => ({
  width: m.width,
  height: m.height,
  data: m.data.byteOffset === 0 && m.data.byteLength === m.data.buffer.byteLength ? (m.data.buffer as ArrayBuffer) : (m.data.slice().buffer as ArrayBuffer),
});

export class Runner {
  constructor(readonly engine: Engine) {}

  /**
   * The engine's description of a request. The files beside the model (preprocessing.json, label
   * files, Hugging Face, timm and ONNX metadata) are read by the engine (explain/model-config.ts).
   */
  static async spec(req: RunRequest): Promise<ImageSpec> {
    const model: ModelSpec = {
      modelPath: req.modelPath,
      backend: req.backend,
      preprocessing: req.preprocessing,
      ...(req.preprocessingFromSetting ? { preprocessingFromSetting: true } : {}),
      rules: req.rules,
      ...(req.labelsPath ? { labelsPath: req.labelsPath } : {}),
    };
    return { ...model, imagePath: req.imagePath, ...(req.target !== undefined ? { target: req.target } : {}) };
  }

  /**
   * Sends a request once its body is built; cancelling before that sends nothing. `what` names the
   * work in error messages (e.g. when the engine process dies).
   */
  private call<K extends RequestKind>(
    kind: K,
    body: () => Promise<RequestOf<K>>,
    what: string,
    onProgress?: (message: string) => void,
  ): Job<ResultOf<K>> {
    let engineCall: EngineCall<ResultOf<K>> | undefined;
    let cancelledEarly = false;
    const result = body().then((b) => {
      if (cancelledEarly) throw new CancelledError();
      engineCall = this.engine.request(kind, b, { what, onProgress });
      return engineCall.result;
    });
    return {
      result,
      cancel: async (hard = false) => {
        if (engineCall) return engineCall.cancel(hard);
        cancelledEarly = true;
        return 'idle';
      },
    };
  }

  /** The main explanation of a panel. */
  run(req: RunRequest, onProgress?: (message: string) => void): Job<RunOutput> {
    const t0 = performance.now();
    const method = req.method ?? 'lrp';
    const job = this.call(
      'explain',
      async () => ({ spec: await Runner.spec(req), method, displayMaxSide: DISPLAY_MAX_SIDE }),
      `explaining ${path.basename(req.imagePath)} with ${req.modelPath}`,
      onProgress,
    );
    return {
      cancel: job.cancel,
      result: job.result.then((r) => {
        const totalMs = performance.now() - t0;
        const request: RunRequest = { ...req, rules: r.rules };
        const payload: Omit<ResultPayload, 'runId'> = {
          model: r.modelPath,
          backend: r.backend,
          target: r.target,
          targetLabel: r.targetLabel,
          logit: r.logit,
          relevanceSum: r.relevanceSum,
          predictions: r.predictions,
          rules: ruleChoiceOf(r.rules),
          method: r.method as MainMethod,
          relevance: toWire(r.map),
          layers: r.layers.map(({ map, channelSums: _sums, ...l }: LayerResult) => ({ ...l, ...(map ? { map: toWire(map) } : {}) })),
          hasAttention: r.hasAttention,
          timings: { loadMs: r.loadMs, forwardMs: r.timings.forwardMs, lrpMs: r.timings.lrpMs, totalMs },
          sources: { preprocessing: r.sources.preprocessing, labels: r.sources.labels, description: r.sources.description },
          modelInput: { width: r.modelInput.width, height: r.modelInput.height, rgb: bytesOf(r.modelInput.rgb) },
          ...(r.region ? { region: { ...r.region } } : {}),
        };
        const ms = (v: number | undefined): string => (v === undefined ? '-' : `${v.toFixed(0)}ms`);
        const rules = r.rules;
        const line =
          `explain ${path.basename(req.imagePath)} model=${req.modelPath} backend=${r.backend} ` +
          `preprocessing=${JSON.stringify(r.sources.preprocessing)} (${r.sources.description}) labels=${JSON.stringify(r.sources.labels)} method=${method} rules=${JSON.stringify({ composite: rules.composite, epsilon: rules.epsilon, gamma: rules.gamma, zeroBias: rules.zeroBias, init: rules.init, overrides: rules.overrides.length, attention: rules.attention })} ` +
          `target=${r.target} (${r.targetLabel}) logit=${r.logit.toPrecision(5)} ` +
          `relevanceSum=${r.relevanceSum.toPrecision(5)} load=${r.loadMs === undefined ? 'cached' : ms(r.loadMs)}${r.reloaded ? ' (model changed on disk: reloaded)' : ''} ` +
          `forward=${ms(r.timings.forwardMs)} lrp=${ms(r.timings.lrpMs)} engine=${ms(r.timings.totalMs)} total=${ms(totalMs)}`;
        return {
          payload,
          image: {
            width: r.image.width,
            height: r.image.height,
            originalWidth: r.image.originalWidth,
            originalHeight: r.image.originalHeight,
            rgb: bytesOf(r.image.rgb),
          },
          request,
          sources: r.sources,
          target: r.target,
          relevance: { dims: r.relevance.dims, data: r.relevance.data },
          summaryJson: r.summaryJson,
          modelStat: r.modelStat,
          reloaded: !!r.reloaded,
          logLine: line,
        };
      }),
    };
  }

  /** One compare-grid cell: the attribution of `method` (a composite or a method beside LRP). */
  attribute(req: RunRequest, method: CompareMethod): Job<Omit<AttributeResult, 'map'> & { map: WireMap }> {
    const job = this.call('attribute', async () => ({ spec: await Runner.spec(req), method }), `computing ${method} for ${path.basename(req.imagePath)}`);
    return { cancel: job.cancel, result: job.result.then((a) => ({ ...a, map: toWire(a.map) })) };
  }

  /** Region perturbation of one method; without a target, the top class (answered in `target`). */
  evaluate(req: RunRequest, method: CompareMethod): Job<EvaluateResult> {
    return this.call('evaluate', async () => ({ spec: await Runner.spec(req), method }), `evaluating ${method} on ${path.basename(req.imagePath)}`);
  }

  /** How far one float32 ulp of input noise moves a finished LRP run's relevance. */
  stability(out: RunOutput): Job<ResultOf<'stability'>> {
    return this.call(
      'stability',
      async () => ({ spec: { ...(await Runner.spec(out.request)), target: out.target }, base: out.relevance.data }),
      `checking the stability of ${path.basename(out.request.imagePath)}`,
    );
  }

  /** Loads the model of a request (the folder view's first step). */
  load(req: RunRequest, onProgress?: (message: string) => void): Job<ResultOf<'load'>> {
    return this.call('load', async () => ({ spec: await Runner.spec(req) }), `loading ${req.modelPath}`, onProgress);
  }

  /** A folder-grid thumbnail of one image, drawn as `picture` says. */
  thumbnail(req: RunRequest, picture: PictureOptions, maxSide: number): Job<ThumbnailResult> {
    return this.call('thumbnail', async () => ({ spec: await Runner.spec(req), picture, maxSide }), `explaining ${path.basename(req.imagePath)}`);
  }

  /** The heatmap PNG export of a finished run, drawn as the panel shows it (view, scale, contrast) on the part of the photo the model saw. */
  async heatmapPng(out: RunOutput, view: ViewOptions): Promise<Uint8Array> {
    const rel = out.payload.relevance;
    const map = { width: rel.width, height: rel.height, data: new Float32Array(rel.data) };
    const options = { colormap: view.colormap, mode: view.sign, alpha: view.opacity, view: view.mode, percentile: view.percentile, gamma: view.gamma };
    const region = out.payload.region;
    const job = this.call('heatmapPng', async () => ({ imagePath: out.request.imagePath, map, ...(region ? { region } : {}), options }), 'writing the heatmap');
    return (await job.result).png;
  }

  /**
   * Concepts (CRP) of a finished LRP run: the conditional maps of the `top` channels of `layer`
   * with their shares and positive and negative parts, for the run's model, image, target and rules.
   */
  conceptMaps(out: RunOutput, layer: string, top: number): Job<Omit<ConceptMapsResult, 'channels'> & { channels: ConceptChannelPayload[] }> {
    const job = this.call(
      'conceptMaps',
      async () => ({ spec: { ...(await Runner.spec(out.request)), target: out.target }, layer, top }),
      `computing the concepts of ${layer} for ${path.basename(out.request.imagePath)}`,
    );
    return { cancel: job.cancel, result: job.result.then((r) => ({ ...r, channels: r.channels.map((c) => ({ ...c, map: toWire(c.map) })) })) };
  }

  /** The layers of a request's model that concepts can condition on. */
  conceptLayers(req: RunRequest): Job<ResultOf<'conceptLayers'>> {
    return this.call('conceptLayers', async () => ({ spec: await Runner.spec(req) }), `listing the layers of ${req.modelPath}`);
  }

  /** Relevance maximisation over `folder` for `layer` (cached under `indexRoot`); progress per image. */
  conceptIndex(req: RunRequest, folder: string, layer: string, indexRoot: string, onProgress?: (message: string) => void): Job<ConceptIndexResult> {
    return this.call('conceptIndex', async () => ({ spec: await Runner.spec(req), folder, layer, indexRoot }), `indexing ${folder} for ${layer}`, onProgress);
  }

  /** Reference crops of `channels` of `layer` from the newest valid index under `indexRoot`. */
  conceptReferences(out: RunOutput, layer: string, channels: number[], indexRoot: string): Job<ConceptReferencesResult> {
    return this.call(
      'conceptReferences',
      async () => ({ spec: await Runner.spec(out.request), layer, channels, perChannel: REFERENCES_PER_CHANNEL, maxSide: REFERENCE_MAX_SIDE, indexRoot }),
      `cropping the reference examples of ${layer}`,
    );
  }

  async dispose(): Promise<void> {
    await this.engine.dispose();
  }
}
