// Runs explanations for the panels by sending requests to the engine process (engineClient.ts):
// resolves what the settings leave to files beside the model (preprocessing.json, labels), builds
// the request, and turns the engine's answer into what the panel shows and the exports write.
// Model loading, preprocessing and LRP all happen in the engine process. No `vscode` import.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RulesConfig } from '../engine/config';
import type { ColormapName } from '../engine/io/heatmap';
import type {
  AttributeResult,
  EvaluateResult,
  ImageSpec,
  LayerResult,
  ModelSpec,
  ModelStat,
  RequestKind,
  RequestOf,
  ResultOf,
  ThumbnailResult,
} from '../explain/server/protocol';
import type { CompareMethod, MainMethod, ResultPayload, ViewOptions, WireImage, WireMap } from '../protocol';
import { CancelledError } from './errors';
import type { CancelOutcome, EngineCall, EngineClient } from './engineClient';
import { LABEL_FILE_NAMES, parsePreprocessingFile, PREPROCESSING_FILE_NAME, ruleChoiceOf, type Backend, type Preprocessing } from './settings';

/** Longest side of the photo sent to the panel. */
export const DISPLAY_MAX_SIDE = 768;

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
  /** The request as run: preprocessing resolved, rules with input bounds. */
  request: RunRequest;
  target: number;
  /** The input relevance in the model's layout (the .npy export). */
  relevance: { dims: number[]; data: Float32Array };
  /** Per layer (the relevance flow's order): channel sums for the layer detail. */
  channelSums: (Float32Array | undefined)[];
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

const toWire = (m: { width: number; height: number; data: Float32Array }): WireMap => ({
  width: m.width,
  height: m.height,
  data: m.data.byteOffset === 0 && m.data.byteLength === m.data.buffer.byteLength ? (m.data.buffer as ArrayBuffer) : (m.data.slice().buffer as ArrayBuffer),
});

export class Runner {
  constructor(readonly engine: EngineClient) {}

  /** The labels file: the explicit one, else a known name beside the model. */
  static findLabels(modelPath: string, labelsPath?: string): string | undefined {
    if (labelsPath) return labelsPath;
    const dir = path.dirname(modelPath);
    for (const name of LABEL_FILE_NAMES) {
      const p = path.join(dir, name);
      if (fs.existsSync(p)) return p;
    }
    return undefined;
  }

  /** The preprocessing for a run: the setting when set, else the model's preprocessing.json, else the default. */
  static async preprocessingFor(req: Pick<RunRequest, 'modelPath' | 'preprocessing' | 'preprocessingFromSetting'>): Promise<Preprocessing> {
    if (req.preprocessingFromSetting) return req.preprocessing;
    const file = path.join(path.dirname(req.modelPath), PREPROCESSING_FILE_NAME);
    let text: string;
    try {
      text = await fs.promises.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return req.preprocessing;
      throw new Error(`${file}: cannot read the preprocessing file: ${(err as Error).message}`);
    }
    return parsePreprocessingFile(text, file);
  }

  /** The engine's description of a request (files beside the model resolved here). */
  static async spec(req: RunRequest): Promise<ImageSpec> {
    const model: ModelSpec = {
      modelPath: req.modelPath,
      backend: req.backend,
      preprocessing: await Runner.preprocessingFor(req),
      rules: req.rules,
      ...(Runner.findLabels(req.modelPath, req.labelsPath) ? { labelsPath: Runner.findLabels(req.modelPath, req.labelsPath) } : {}),
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
    let spec: ImageSpec | undefined;
    const job = this.call(
      'explain',
      async () => {
        spec = await Runner.spec(req);
        return { spec, method, displayMaxSide: DISPLAY_MAX_SIDE };
      },
      `explaining ${path.basename(req.imagePath)} with ${req.modelPath}`,
      onProgress,
    );
    return {
      cancel: job.cancel,
      result: job.result.then((r) => {
        const totalMs = performance.now() - t0;
        const request: RunRequest = { ...req, preprocessing: spec!.preprocessing as Preprocessing, rules: r.rules };
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
          timings: { loadMs: r.loadMs, forwardMs: r.timings.forwardMs, lrpMs: r.timings.lrpMs, totalMs },
        };
        const ms = (v: number | undefined): string => (v === undefined ? '-' : `${v.toFixed(0)}ms`);
        const rules = r.rules;
        const line =
          `explain ${path.basename(req.imagePath)} model=${req.modelPath} backend=${r.backend} ` +
          `preset=${r.preset} method=${method} rules=${JSON.stringify({ composite: rules.composite, epsilon: rules.epsilon, gamma: rules.gamma, zeroBias: rules.zeroBias, init: rules.init, overrides: rules.overrides.length })} ` +
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
            rgb: r.image.rgb.byteOffset === 0 && r.image.rgb.byteLength === r.image.rgb.buffer.byteLength ? (r.image.rgb.buffer as ArrayBuffer) : (r.image.rgb.slice().buffer as ArrayBuffer),
          },
          request,
          target: r.target,
          relevance: { dims: r.relevance.dims, data: r.relevance.data },
          channelSums: r.layers.map((l) => l.channelSums),
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
      async () => ({ spec: { ...(await Runner.spec({ ...out.request, preprocessingFromSetting: true })), target: out.target }, base: out.relevance.data }),
      `checking the stability of ${path.basename(out.request.imagePath)}`,
    );
  }

  /** Loads the model of a request (the folder view's first step). */
  load(req: RunRequest, onProgress?: (message: string) => void): Job<ResultOf<'load'>> {
    return this.call('load', async () => ({ spec: await Runner.spec(req) }), `loading ${req.modelPath}`, onProgress);
  }

  /** A folder-grid thumbnail of one image. */
  thumbnail(req: RunRequest, colormap: ColormapName, maxSide: number): Job<ThumbnailResult> {
    return this.call('thumbnail', async () => ({ spec: await Runner.spec(req), colormap, maxSide }), `explaining ${path.basename(req.imagePath)}`);
  }

  /** The heatmap PNG export of a finished run. */
  async heatmapPng(out: RunOutput, view: ViewOptions): Promise<Uint8Array> {
    const rel = out.payload.relevance;
    const map = { width: rel.width, height: rel.height, data: new Float32Array(rel.data) };
    const job = this.call('heatmapPng', async () => ({ imagePath: out.request.imagePath, map, colormap: view.colormap, mode: view.sign, alpha: view.opacity }), 'writing the heatmap');
    return (await job.result).png;
  }

  async dispose(): Promise<void> {
    await this.engine.dispose();
  }
}
