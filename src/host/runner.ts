// Runs explanations for the panels: cached engine sessions, preprocessing from the settings,
// labels, top-5 and the data the panel and the exports need. No `vscode` import.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RulesConfig } from '../engine/config';
import type { Explainer } from '../explain/explainer';
import type { PreprocessOptions, RgbImage } from '../engine/io/image';
import type { PhotoRegion } from '../engine/io/preprocess';
import { describeOptions, optionsFromSpec, type PreprocessingSpec } from '../engine/io/preprocessing-spec';
import { resolveModelConfig, type ModelConfig } from './model-config';
import type { Explanation } from '../engine/types';
import type { Stability } from '../explain/stability';
import type { EvaluationResult } from '../explain/evaluate';
import type { Tensor } from '../engine/graph/graph';
import type { Attribution } from '../explain/methods';
import { softmax, topK } from '../engine/scores';
import { packMap, type CompareMethod, type MainMethod, type Prediction, type ResultPayload, type WireImage } from '../protocol';
import { ruleChoiceOf, sessionKey, type Backend, type Preprocessing } from './settings';

type ExplainerModule = typeof import('../explain/explainer');
type ImageModule = typeof import('../engine/io/image');
type HeatmapModule = typeof import('../engine/io/heatmap');
type LabelsModule = typeof import('../engine/io/labels');
type SummaryModule = typeof import('../explain/summary');

// The engine is loaded on first use: activation stays fast and a broken native module shows up
// as an error in the panel, not as a failed activation.
let engine:
  | Promise<{ explainer: ExplainerModule; image: ImageModule; heatmap: HeatmapModule; labels: LabelsModule; summary: SummaryModule }>
  | undefined;

export function loadEngine(): NonNullable<typeof engine> {
  engine ??= Promise.all([
    import('../explain/explainer'),
    import('../engine/io/image'),
    import('../engine/io/heatmap'),
    import('../engine/io/labels'),
    import('../explain/summary'),
  ]).then(([explainer, image, heatmap, labels, summary]) => ({ explainer, image, heatmap, labels, summary }));
  engine.catch(() => (engine = undefined));
  return engine;
}

/** Longest side of the photo sent to the panel. */
export const DISPLAY_MAX_SIDE = 768;
const MAX_SESSIONS = 3;

interface CachedSession {
  key: string;
  explainer: Promise<Explainer>;
}

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

/** A request's session and preprocessed input, reused by the compare cells and the evaluation. */
/** What the images of one request share (see Runner.setup). */
export interface ModelSetup {
  explainer: Explainer;
  loadMs?: number;
  /** How each image is decoded, resized and scaled for this model. */
  prep: PreprocessOptions;
  labels?: string[];
  /** The request's rules with input bounds filled in. */
  rules: RulesConfig;
  preprocessing: PreprocessingSpec;
  /** Where the preprocessing and the labels came from, and the preprocessing in one line. */
  sources: { preprocessing: string; labels: string; description: string; warnings: string[] };
}

export interface PreparedInput extends Omit<ModelSetup, 'prep'> {
  tensor: Tensor;
  original: RgbImage;
  /** The picture the model saw (resized, cropped) and the part of the photo it covers. */
  input: RgbImage;
  region: PhotoRegion;
}

/** Everything a finished run leaves behind: what the panel shows and what the exports write. */
export interface RunOutput {
  payload: Omit<ResultPayload, 'runId'>;
  image: WireImage;
  explanation: Explanation;
  original: RgbImage;
  request: RunRequest;
  labels?: string[];
  sources: ModelSetup['sources'];
  logLine: string;
}

export class Runner {
  private sessions: CachedSession[] = [];

  /** A cached session per (model file, backend), reloaded when the file changes. */
  async session(
    modelPath: string,
    backend: Backend,
    inputSize?: { width: number; height: number },
  ): Promise<{ explainer: Explainer; loadMs?: number }> {
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(modelPath);
    } catch {
      throw new Error(`${modelPath}: model file not found`);
    }
    const key = sessionKey(modelPath, backend, stat.mtimeMs, stat.size, inputSize);
    const hit = this.sessions.find((s) => s.key === key);
    if (hit) {
      this.sessions = [hit, ...this.sessions.filter((s) => s !== hit)];
      return { explainer: await hit.explainer };
    }
    const { explainer } = await loadEngine();
    const t0 = performance.now();
    const entry: CachedSession = { key, explainer: explainer.Explainer.load(modelPath, { backend, inputSize }) };
    // Older sessions of the same model file are stale now.
    const stale = this.sessions.filter((s) => JSON.parse(s.key)[0] === modelPath && JSON.parse(s.key)[1] === backend);
    this.sessions = [entry, ...this.sessions.filter((s) => !stale.includes(s))];
    const evicted = [...stale, ...this.sessions.slice(MAX_SESSIONS)];
    this.sessions = this.sessions.slice(0, MAX_SESSIONS);
    for (const s of evicted) void s.explainer.then((e) => e.dispose()).catch(() => undefined);
    try {
      const e = await entry.explainer;
      return { explainer: e, loadMs: performance.now() - t0 };
    } catch (err) {
      this.sessions = this.sessions.filter((s) => s !== entry);
      throw err;
    }
  }

  async dispose(): Promise<void> {
    const all = this.sessions;
    this.sessions = [];
    await Promise.all(all.map((s) => s.explainer.then((e) => e.dispose()).catch(() => undefined)));
  }

  /**
   * The preprocessing and labels of a request with their sources: the setting when set, else the
   * model's preprocessing.json or label file, else what the model folder carries (Hugging Face,
   * timm, ONNX metadata), else the defaults (see model-config.ts).
   */
  static configFor(req: RunRequest): Promise<ModelConfig> {
    return resolveModelConfig({
      modelPath: req.modelPath,
      user: req.preprocessingFromSetting ? { spec: req.preprocessing, source: 'setting lrpLens.preprocessing' } : undefined,
      labelsPath: req.labelsPath,
      defaultSpec: req.preprocessing,
    });
  }

  /** The preprocessing for a run (see configFor). */
  static async preprocessingFor(req: RunRequest): Promise<PreprocessingSpec> {
    return (await Runner.configFor(req)).preprocessing;
  }

  /**
   * What every image of a request shares: the session, the image preprocessing options (the
   * preprocessing size fixes the input of a model that leaves its height and width open), the
   * labels and the rules with input bounds filled in.
   */
  async setup(req: RunRequest): Promise<ModelSetup> {
    const { image } = await loadEngine();
    const cfg = await Runner.configFor(req);
    const pre = cfg.preprocessing;
    const { explainer, loadMs } = await this.session(req.modelPath, req.backend, pre.size);
    const info = explainer.input;
    const width = info.width > 0 ? info.width : pre.size?.width;
    const height = info.height > 0 ? info.height : pre.size?.height;
    if (!width || !height)
      throw new Error(`${req.modelPath}: the model does not declare its input size; set 'lrpLens.preprocessing.size' (e.g. [224, 224])`);
    const prep: PreprocessOptions = optionsFromSpec(pre, { width, height, channels: info.channels === 1 ? 1 : 3, layout: info.layout }, 'imagenet');
    const labels = cfg.labels;
    const sources = { preprocessing: cfg.preprocessingSource, labels: cfg.labelsSource, description: describeOptions(prep), warnings: cfg.warnings };
    const rules: RulesConfig = req.rules.inputBounds ? req.rules : { ...req.rules, inputBounds: image.inputBoundsFor(prep) };
    return { explainer, loadMs, prep, labels, rules, preprocessing: pre, sources };
  }

  /** Loads the session, the labels and the preprocessed input of a request. */
  async prepare(req: RunRequest): Promise<PreparedInput> {
    const { image } = await loadEngine();
    const { prep, ...setup } = await this.setup(req);
    const { tensor, original, input, region } = await image.loadImageTensor(req.imagePath, prep);
    const n = setup.explainer.numClasses;
    if (req.target !== undefined && (req.target < 0 || req.target >= n))
      throw new Error(`target ${req.target} is out of range: the model has ${n} classes (0-${n - 1})`);
    return { ...setup, tensor, original, input, region };
  }

  /** One compare-grid cell: the attribution of `method` (a composite or a method beside LRP). */
  async attribute(input: PreparedInput, method: CompareMethod, target: number | undefined): Promise<Attribution> {
    const { parseMethod } = await import('../explain/methods');
    return input.explainer.attribute(input.tensor, { method: parseMethod(method, input.rules), target });
  }

  /** Region perturbation of one method (see engine/evaluate.ts). */
  async evaluate(input: PreparedInput, method: CompareMethod, target: number): Promise<EvaluationResult> {
    const { evaluateMethods } = await import('../explain/evaluate');
    return evaluateMethods(input.explainer, input.tensor, { methods: [method], rules: input.rules, target });
  }

  /**
   * How far one float32 ulp of input noise moves an LRP run's relevance (engine/stability.ts):
   * three more explanations of the same target on the cached session and program.
   */
  async stability(out: RunOutput): Promise<Stability> {
    const input = await this.prepare({ ...out.request, target: out.explanation.target });
    return input.explainer.stability(input.tensor, out.explanation, { rules: input.rules, maps: true });
  }


  async run(req: RunRequest): Promise<RunOutput> {
    const t0 = performance.now();
    const { image, heatmap, labels: labelsMod, summary } = await loadEngine();
    const input = await this.prepare(req);
    const { explainer, loadMs, tensor, original, labels, rules } = input;
    const method = req.method ?? 'lrp';
    let explanation: Explanation;
    if (method === 'lrp') {
      explanation = await explainer.explain(tensor, { target: req.target, rules, maps: true });
    } else {
      // A method beside LRP: the same payload without per-layer relevance.
      const a = await this.attribute(input, method, req.target);
      let sum = 0;
      for (const v of a.map.data) sum += v;
      explanation = {
        relevance: a.relevance,
        layout: explainer.input.layout,
        logits: a.logits,
        target: a.target,
        logit: a.logit,
        relevanceSum: sum,
        layers: [],
        timings: { lrpMs: a.timings.ms },
      };
    }

    const probs = softmax(explanation.logits);
    const predictions: Prediction[] = topK(explanation.logits, 5).map((i) => ({
      index: i,
      label: labelsMod.labelFor(labels, i),
      score: probs[i],
      logit: explanation.logits[i],
    }));
    const inputMap = heatmap.relevanceMap(explanation.relevance, explanation.layout);
    const display = await shrink(image, original);
    const totalMs = performance.now() - t0;
    const payload: Omit<ResultPayload, 'runId'> = {
      model: req.modelPath,
      backend: explainer.backendDetail,
      target: explanation.target,
      targetLabel: labelsMod.labelFor(labels, explanation.target),
      logit: explanation.logit,
      relevanceSum: explanation.relevanceSum,
      predictions,
      rules: ruleChoiceOf(rules),
      method,
      relevance: packMap(inputMap),
      layers: explanation.layers.map((l) => ({ ...summary.layerSummary(l), ...(l.map ? { map: packMap(l.map) } : {}) })),
      timings: { loadMs, forwardMs: explanation.timings.forwardMs, lrpMs: explanation.timings.lrpMs, totalMs },
      ...inputPayload(input, original),
    };
    const ms = (v: number | undefined): string => (v === undefined ? '-' : `${v.toFixed(0)}ms`);
    const line =
      `explain ${path.basename(req.imagePath)} model=${req.modelPath} backend=${explainer.backendDetail} ` +
      `preprocessing=${JSON.stringify(input.sources.preprocessing)} (${input.sources.description}) labels=${JSON.stringify(input.sources.labels)} method=${method} rules=${JSON.stringify({ composite: rules.composite, epsilon: rules.epsilon, gamma: rules.gamma, zeroBias: rules.zeroBias, init: rules.init, overrides: rules.overrides.length })} ` +
      `target=${explanation.target} (${payload.targetLabel}) logit=${explanation.logit.toPrecision(5)} ` +
      `relevanceSum=${explanation.relevanceSum.toPrecision(5)} load=${loadMs === undefined ? 'cached' : ms(loadMs)} ` +
      `forward=${ms(explanation.timings.forwardMs)} lrp=${ms(explanation.timings.lrpMs)} total=${ms(totalMs)}`;
    return {
      payload,
      image: {
        width: display.width,
        height: display.height,
        originalWidth: original.width,
        originalHeight: original.height,
        rgb: display.rgb.slice().buffer,
      },
      explanation,
      original,
      request: { ...req, rules },
      labels,
      sources: input.sources,
      logLine: line,
    };
  }
}

/** What the panel needs to show where the preprocessing and labels came from and what the model saw. */
export function inputPayload(input: PreparedInput, original: RgbImage): Pick<ResultPayload, 'sources' | 'modelInput' | 'region'> {
  const whole = input.region.x === 0 && input.region.y === 0 && input.region.width === original.width && input.region.height === original.height;
  return {
    sources: { preprocessing: input.sources.preprocessing, labels: input.sources.labels, description: input.sources.description },
    modelInput: { width: input.input.width, height: input.input.height, rgb: input.input.rgb.slice().buffer },
    ...(whole ? {} : { region: { ...input.region } }),
  };
}

async function shrink(image: ImageModule, img: RgbImage): Promise<RgbImage> {
  const longest = Math.max(img.width, img.height);
  if (longest <= DISPLAY_MAX_SIDE) return img;
  const f = DISPLAY_MAX_SIDE / longest;
  return image.resizeImage(img, Math.max(1, Math.round(img.width * f)), Math.max(1, Math.round(img.height * f)));
}

/** The summary JSON export (the CLI's --out-json shape plus the image). */
export function summaryJson(out: RunOutput, summarize: SummaryModule['explanationSummary']): string {
  const e = out.explanation;
  const summary = summarize({
    image: out.request.imagePath,
    model: out.request.modelPath,
    backend: out.payload.backend,
    rules: out.request.rules,
    labels: out.labels,
    explanation: e,
    timings: { loadMs: out.payload.timings.loadMs, forwardMs: e.timings.forwardMs, lrpMs: e.timings.lrpMs },
    sources: out.sources,
  });
  return JSON.stringify(summary, null, 2);
}
