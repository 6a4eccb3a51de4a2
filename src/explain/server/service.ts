// What the engine process does for each request: loaded models kept between requests (checked
// against the file's size and mtime on every request), the model's preprocessing and labels
// resolved with their sources (../model-config.ts), images decoded and preprocessed, LRP and the
// other methods run, heatmap pictures drawn, results packed for the host. No `vscode` import, no process plumbing (see
// main.ts): tests drive it directly.
import { promises as fsp, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { RulesConfig } from '../../engine/config';
import { blendHeatmap, blendPixels, relevanceMap, type RelevanceMap } from '../../engine/io/heatmap';
import { decodeImage, inputBoundsFor, loadImageTensor, resizeImage, type PreprocessOptions, type RgbImage } from '../../engine/io/image';
import { labelFor } from '../../engine/io/labels';
import { dimOutside, isPartial, placeMap, type Region } from '../../engine/io/placement';
import type { PhotoRegion } from '../../engine/io/preprocess';
import { describeOptions, optionsFromSpec, type PreprocessingSpec } from '../../engine/io/preprocessing-spec';
import { resolveModelConfig, type ModelConfig } from '../model-config';
import { softmax, topK } from '../../engine/scores';
import type { Tensor } from '../../engine/graph/graph';
import type { Explanation, LayerRelevance } from '../../engine/types';
import { evaluateMethods } from '../evaluate';
import { listImages } from '../batch';
import { channelMask, conditionLayer, conditionalRelevance, topChannels } from '../concepts';
import {
  INDEX_META_FILE,
  atlasKey,
  findIndexes,
  indexDirFor,
  readAtlasCache,
  referenceCrops,
  scanImages,
  writeAtlasCache,
  type ImageScores,
  type IndexMeta,
} from '../concept-atlas';
import { Explainer } from '../explainer';
import { parseMethod, type TokenLayout } from '../methods';
import { tokenRelevance } from '../tokens';
import { explanationSummary, layerSummary } from '../summary';
import {
  CONCEPT_LAYER_OPS,
  ENGINE_ERRORS,
  estimatedModelMb,
  type EngineRequests,
  type ImageSpec,
  type LayerResult,
  type ModelSources,
  type ModelSpec,
  type ModelStat,
  type ConceptLayer,
  type RequestKind,
  type RequestOf,
  type ResultOf,
} from './protocol';

/**
 * The preprocessing and labels of a request with their sources: the setting when set, else the
 * model's preprocessing.json or label file, else what the model folder carries (Hugging Face,
 * timm, ONNX metadata), else the defaults (see ../model-config.ts).
 */
export function modelConfigOf(spec: ModelSpec): Promise<ModelConfig> {
  return resolveModelConfig({
    modelPath: spec.modelPath,
    user: spec.preprocessingFromSetting ? { spec: spec.preprocessing, source: 'setting lrpLens.preprocessing' } : undefined,
    labelsPath: spec.labelsPath,
    defaultSpec: spec.preprocessing,
  });
}

/** Models kept loaded at once (least recently used first out). */
const MAX_MODELS = 3;

export class ModelChangedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = ENGINE_ERRORS.modelChanged;
  }
}

export class EngineMemoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = ENGINE_ERRORS.memory;
  }
}

export class EngineCancelledError extends Error {
  constructor() {
    super('Cancelled');
    this.name = ENGINE_ERRORS.cancelled;
  }
}

/** How a request reports progress and notices cancellation (between its steps). */
export interface RequestContext {
  progress(message: string): void;
  /** Throws EngineCancelledError once the request was cancelled. */
  check(): void;
}

export const NO_CONTEXT: RequestContext = { progress: () => undefined, check: () => undefined };

interface LoadedModel {
  modelPath: string;
  backend: string;
  /** The input size asked for (models that leave it open), part of the key. */
  size?: { width: number; height: number };
  stat: ModelStat;
  explainer: Promise<Explainer>;
}

interface Prepared {
  explainer: Explainer;
  loadMs?: number;
  reloaded?: boolean;
  stat: ModelStat;
  prep: PreprocessOptions;
  labels?: string[];
  rules: RulesConfig;
  /** The preprocessing as resolved for the model, and where it and the labels came from. */
  preprocessing: PreprocessingSpec;
  sources: ModelSources;
}

async function statModel(modelPath: string): Promise<ModelStat> {
  try {
    const s = await fsp.stat(modelPath);
    return { size: s.size, mtimeMs: s.mtimeMs };
  } catch {
    throw new Error(`${modelPath}: model file not found`);
  }
}

const sameStat = (a: ModelStat, b: ModelStat): boolean => a.size === b.size && a.mtimeMs === b.mtimeMs;
const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;

export interface ServiceOptions {
  /** The engine's memory limit in MiB (lrpLens.engineMemoryMb); models estimated above it are refused. */
  memoryMb?: number;
}

export class EngineService {
  private models: LoadedModel[] = [];

  constructor(private readonly opts: ServiceOptions = {}) {}

  async handle<K extends RequestKind>(kind: K, body: RequestOf<K>, ctx: RequestContext = NO_CONTEXT): Promise<ResultOf<K>> {
    const handlers: { [P in RequestKind]: (b: RequestOf<P>, c: RequestContext) => Promise<ResultOf<P>> } = {
      explain: (b, c) => this.explain(b, c),
      attribute: (b, c) => this.attribute(b, c),
      evaluate: (b, c) => this.evaluate(b, c),
      stability: (b, c) => this.stability(b, c),
      load: (b, c) => this.load(b, c),
      thumbnail: (b, c) => this.thumbnail(b, c),
      heatmapPng: (b) => this.heatmapPng(b),
      status: async () => this.status(),
      conceptMaps: (b, c) => this.conceptMaps(b, c),
      conceptLayers: (b, c) => this.conceptLayers(b, c),
      conceptIndex: (b, c) => this.conceptIndex(b, c),
      conceptReferences: (b, c) => this.conceptReferences(b, c),
    };
    return (handlers[kind] as (b: RequestOf<K>, c: RequestContext) => Promise<ResultOf<K>>)(body, ctx);
  }

  status(): EngineRequests['status']['res'] {
    return {
      pid: process.pid,
      rssMb: Math.round(process.memoryUsage.rss() / 2 ** 20),
      models: this.models.map((m) => ({ modelPath: m.modelPath, backend: m.backend, stat: m.stat })),
    };
  }

  /**
   * The loaded model for a spec: loaded when missing, loaded again when the file's size or mtime
   * changed. A file that changes while it loads gives a ModelChangedError.
   */
  private async model(
    spec: ModelSpec,
    size: { width: number; height: number } | undefined,
    ctx: RequestContext,
  ): Promise<{ explainer: Explainer; stat: ModelStat; loadMs?: number; reloaded?: boolean }> {
    const { modelPath, backend } = spec;
    const stat = await statModel(modelPath);
    const sameKey = (m: LoadedModel): boolean =>
      m.modelPath === modelPath && m.backend === backend && JSON.stringify(m.size) === JSON.stringify(size);
    const hit = this.models.find(sameKey);
    if (hit && sameStat(hit.stat, stat)) {
      this.models = [hit, ...this.models.filter((m) => m !== hit)];
      return { explainer: await hit.explainer, stat };
    }
    // not loaded, or changed on disk: every loaded version of this file is stale
    const reloaded = this.models.some((m) => m.modelPath === modelPath && !sameStat(m.stat, stat));
    this.drop((m) => m.modelPath === modelPath && !sameStat(m.stat, stat));
    const limit = this.opts.memoryMb;
    if (limit !== undefined && estimatedModelMb(stat.size) > limit)
      throw new EngineMemoryError(
        `${modelPath} (${mb(stat.size)}) needs about ${estimatedModelMb(stat.size)} MB to explain, more than the engine's memory limit of ${limit} MB (setting lrpLens.engineMemoryMb)`,
      );
    ctx.check();
    ctx.progress(`loading ${path.basename(modelPath)}${reloaded ? ' (changed on disk)' : ''}…`);
    const t0 = performance.now();
    const entry: LoadedModel = { modelPath, backend, size, stat, explainer: Explainer.load(modelPath, { backend, inputSize: size }) };
    this.models = [entry, ...this.models];
    this.drop((_, i) => i >= MAX_MODELS);
    let explainer: Explainer;
    try {
      explainer = await entry.explainer;
    } catch (err) {
      this.models = this.models.filter((m) => m !== entry);
      const after = await statModel(modelPath).catch(() => undefined);
      if (!after || !sameStat(after, stat))
        throw new ModelChangedError(`${modelPath} changed on disk while it was being loaded (${(err as Error).message}); explain again to use the new file`);
      throw err;
    }
    const after = await statModel(modelPath).catch(() => undefined);
    if (!after || !sameStat(after, stat)) {
      this.drop((m) => m === entry);
      throw new ModelChangedError(`${modelPath} changed on disk while it was being loaded; explain again to use the new file`);
    }
    return { explainer, stat, loadMs: performance.now() - t0, reloaded };
  }

  private drop(which: (m: LoadedModel, i: number) => boolean): void {
    const gone = this.models.filter(which);
    this.models = this.models.filter((m, i) => !which(m, i));
    for (const m of gone) void m.explainer.then((e) => e.dispose()).catch(() => undefined);
  }

  /** After a request: the model file must still be the one the result was computed with. */
  private async checkUnchanged(modelPath: string, stat: ModelStat): Promise<void> {
    const now = await statModel(modelPath).catch(() => undefined);
    if (now && sameStat(now, stat)) return;
    this.drop((m) => m.modelPath === modelPath);
    throw new ModelChangedError(
      `${modelPath} was ${now ? 'replaced' : 'removed'} on disk during the explanation; the result was discarded. Explain again to use the ${now ? 'new' : 'current'} file`,
    );
  }

  /**
   * Session, preprocessing options, labels and the rules with input bounds of a spec. The
   * preprocessing and labels: the setting when set, else the model's preprocessing.json or label
   * file, else what the model folder carries (Hugging Face, timm, ONNX metadata), else the
   * defaults (see ../model-config.ts); the preprocessing size fixes the input of a model that
   * leaves its height and width open.
   */
  private async setup(spec: ModelSpec, ctx: RequestContext): Promise<Prepared> {
    const cfg = await modelConfigOf(spec);
    ctx.check();
    const pre = cfg.preprocessing;
    const { explainer, stat, loadMs, reloaded } = await this.model(spec, pre.size, ctx);
    ctx.check();
    const info = explainer.input;
    const width = info.width > 0 ? info.width : pre.size?.width;
    const height = info.height > 0 ? info.height : pre.size?.height;
    if (!width || !height)
      throw new Error(`${spec.modelPath}: the model does not declare its input size; set 'lrpLens.preprocessing.size' (e.g. [224, 224])`);
    const prep: PreprocessOptions = optionsFromSpec(pre, { width, height, channels: info.channels === 1 ? 1 : 3, layout: info.layout }, 'imagenet');
    const sources: ModelSources = { preprocessing: cfg.preprocessingSource, labels: cfg.labelsSource, description: describeOptions(prep), warnings: cfg.warnings };
    const rules: RulesConfig = spec.rules.inputBounds ? spec.rules : { ...spec.rules, inputBounds: inputBoundsFor(prep) };
    return { explainer, stat, loadMs, reloaded, prep, labels: cfg.labels, rules, preprocessing: pre, sources };
  }

  private async input(
    spec: ImageSpec,
    ctx: RequestContext,
  ): Promise<Prepared & { tensor: Tensor; original: RgbImage; modelInput: RgbImage; region: PhotoRegion }> {
    const setup = await this.setup(spec, ctx);
    const { tensor, original, input: modelInput, region } = await loadImageTensor(spec.imagePath, setup.prep);
    const n = setup.explainer.numClasses;
    if (spec.target !== undefined && (spec.target < 0 || spec.target >= n))
      throw new Error(`target ${spec.target} is out of range: the model has ${n} classes (0-${n - 1})`);
    ctx.check();
    return { ...setup, tensor, original, modelInput, region };
  }

  private async explain(body: RequestOf<'explain'>, ctx: RequestContext): Promise<ResultOf<'explain'>> {
    const t0 = performance.now();
    const { spec, method } = body;
    const input = await this.input(spec, ctx);
    const { explainer, rules, labels } = input;
    let explanation: Explanation;
    if (method === 'lrp') {
      ctx.progress('compiling the LRP program…');
      await explainer.prepare(rules, true, true);
      ctx.check();
      ctx.progress('explaining…');
      explanation = await explainer.explain(input.tensor, { target: spec.target, rules, maps: true });
    } else {
      ctx.progress(`explaining (${method})…`);
      const a = await explainer.attribute(input.tensor, { method: parseMethod(method, rules), target: spec.target });
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
    ctx.check();
    await this.checkUnchanged(spec.modelPath, input.stat);
    const probs = softmax(explanation.logits);
    const predictions = topK(explanation.logits, 5).map((i) => ({ index: i, label: labelFor(labels, i), score: probs[i], logit: explanation.logits[i] }));
    const inputMap = relevanceMap(explanation.relevance, explanation.layout);
    const display = await shrink(input.original, body.displayMaxSide);
    const summary = explanationSummary({
      image: spec.imagePath,
      model: spec.modelPath,
      backend: explainer.backendDetail,
      rules,
      labels,
      explanation,
      timings: { loadMs: input.loadMs, forwardMs: explanation.timings.forwardMs, lrpMs: explanation.timings.lrpMs },
      sources: input.sources,
    });
    const { original, region } = input;
    return {
      modelPath: spec.modelPath,
      modelStat: input.stat,
      loadMs: input.loadMs,
      ...(input.reloaded ? { reloaded: true } : {}),
      backend: explainer.backendDetail,
      method,
      target: explanation.target,
      targetLabel: labelFor(labels, explanation.target),
      logit: explanation.logit,
      relevanceSum: explanation.relevanceSum,
      predictions,
      rules,
      preprocessing: input.preprocessing,
      sources: input.sources,
      modelInput: { width: input.modelInput.width, height: input.modelInput.height, rgb: input.modelInput.rgb },
      ...(isPartial(region, original.width, original.height) ? { region: { x: region.x, y: region.y, width: region.width, height: region.height } } : {}),
      map: { width: inputMap.width, height: inputMap.height, data: Float32Array.from(inputMap.data) },
      relevance: { dims: explanation.relevance.dims, layout: explanation.layout, data: explanation.relevance.data as Float32Array },
      layers: explanation.layers.map((l) => layerResult(l, explainer.tokenLayout)),
      hasAttention: explainer.hasAttention,
      image: { width: display.width, height: display.height, originalWidth: input.original.width, originalHeight: input.original.height, rgb: display.rgb },
      summaryJson: JSON.stringify(summary, null, 2),
      timings: { forwardMs: explanation.timings.forwardMs, lrpMs: explanation.timings.lrpMs, totalMs: performance.now() - t0 },
    };
  }

  private async attribute(body: RequestOf<'attribute'>, ctx: RequestContext): Promise<ResultOf<'attribute'>> {
    const input = await this.input(body.spec, ctx);
    const a = await input.explainer.attribute(input.tensor, { method: parseMethod(body.method, input.rules), target: body.spec.target });
    await this.checkUnchanged(body.spec.modelPath, input.stat);
    return {
      target: a.target,
      map: { width: a.map.width, height: a.map.height, data: Float32Array.from(a.map.data) },
      logit: a.logit,
      ms: a.timings.ms,
      ...(a.layer ? { layer: a.layer } : {}),
    };
  }

  private async evaluate(body: RequestOf<'evaluate'>, ctx: RequestContext): Promise<ResultOf<'evaluate'>> {
    const input = await this.input(body.spec, ctx);
    let t = body.spec.target;
    if (t === undefined) {
      const logits = await input.explainer.forward(input.tensor);
      t = 0;
      for (let k = 1; k < logits.length; k++) if (logits[k] > logits[t]) t = k;
      ctx.check();
    }
    const r = await evaluateMethods(input.explainer, input.tensor, { methods: [body.method], rules: input.rules, target: t });
    await this.checkUnchanged(body.spec.modelPath, input.stat);
    return {
      target: t,
      targetLabel: labelFor(input.labels, t),
      steps: r.steps,
      patch: r.patch,
      patches: r.patches,
      patchCount: r.patchCount,
      share: r.share,
      methods: r.methods,
    };
  }

  private async stability(body: RequestOf<'stability'>, ctx: RequestContext): Promise<ResultOf<'stability'>> {
    const input = await this.input(body.spec, ctx);
    // the base explanation as far as the check reads it: its target and input relevance
    const base: Explanation = {
      relevance: { dtype: 'float32', dims: [...input.tensor.dims], data: body.base },
      layout: input.explainer.input.layout,
      logits: new Float32Array(0),
      target: body.spec.target,
      logit: 0,
      relevanceSum: 0,
      layers: [],
      timings: { lrpMs: 0 },
    };
    const r = await input.explainer.stability(input.tensor, base, { rules: input.rules, maps: true });
    await this.checkUnchanged(body.spec.modelPath, input.stat);
    return r;
  }

  private async load(body: RequestOf<'load'>, ctx: RequestContext): Promise<ResultOf<'load'>> {
    const s = await this.setup(body.spec, ctx);
    return { backend: s.explainer.backendDetail, modelStat: s.stat, sources: s.sources, ...(s.loadMs !== undefined ? { loadMs: s.loadMs } : {}) };
  }

  private async thumbnail(body: RequestOf<'thumbnail'>, ctx: RequestContext): Promise<ResultOf<'thumbnail'>> {
    const input = await this.input(body.spec, ctx);
    const e = await input.explainer.explain(input.tensor, { rules: input.rules, layers: false, target: body.spec.target });
    await this.checkUnchanged(body.spec.modelPath, input.stat);
    const probs = softmax(e.logits);
    const [top] = topK(e.logits, 1);
    const small = await shrink(input.original, body.maxSide);
    const { photo, map } = onPhoto(small, input.original, relevanceMap(e.relevance, e.layout), input.region);
    const rgb = blendPixels(photo, map, body.picture);
    return {
      label: labelFor(input.labels, top),
      score: probs[top],
      target: e.target,
      relevanceSum: e.relevanceSum,
      // wider than the photo in the side view
      thumb: { width: rgb.length / 3 / photo.height, height: photo.height, rgb },
    };
  }

  private async heatmapPng(body: RequestOf<'heatmapPng'>): Promise<ResultOf<'heatmapPng'>> {
    const original = await decodeImage(body.imagePath);
    const { photo, map } = onPhoto(original, original, body.map, body.region);
    const png = await blendHeatmap(photo, map, body.options);
    return { png };
  }

  /** Concepts (CRP): each channel's conditional input map, its share of the layer's relevance and its positive and negative parts. */
  private async conceptMaps(body: RequestOf<'conceptMaps'>, ctx: RequestContext): Promise<ResultOf<'conceptMaps'>> {
    const t0 = performance.now();
    const input = await this.input(body.spec, ctx);
    const { explainer, rules } = input;
    const info = conditionLayer(explainer, body.layer);
    const C = info.channels;
    const target = body.spec.target;
    let channels = body.channels;
    if (channels?.length) {
      for (const c of channels)
        if (!Number.isInteger(c) || c < 0 || c >= C)
          throw new Error(`${body.spec.modelPath}: channel ${c} is out of range: layer '${info.name}' has ${C} channels (0 to ${C - 1})`);
    } else {
      // the channels' relevance at the layer, from one run through all of them
      ctx.progress(`ranking the channels of ${info.name}…`);
      const probe = await conditionalRelevance(explainer, input.tensor, { rules, target, layer: info.name, masks: [channelMask(C, range(C))] });
      channels = topChannels(probe.channelRelevance, Math.min(Math.max(1, body.top ?? 8), C));
    }
    ctx.check();
    ctx.progress(`conditional maps of ${channels.length} channels of ${info.name}…`);
    const res = await conditionalRelevance(explainer, input.tensor, { rules, target, layer: info.name, masks: channels.map((c) => channelMask(C, [c])) });
    await this.checkUnchanged(body.spec.modelPath, input.stat);
    return {
      layer: info.name,
      opType: info.opType,
      channelCount: C,
      target: res.target,
      layerRelevance: res.layerRelevance,
      batched: res.batched,
      ms: performance.now() - t0,
      channels: res.maps.map((m, k) => {
        let positiveSum = 0;
        let negativeSum = 0;
        for (const v of m.relevance.data as Float32Array) {
          if (v > 0) positiveSum += v;
          else negativeSum += v;
        }
        const map = relevanceMap(m.relevance, explainer.input.layout);
        return {
          channel: channels[k],
          relevance: m.conditionRelevance,
          share: res.layerRelevance === 0 ? 0 : m.conditionRelevance / res.layerRelevance,
          positiveSum,
          negativeSum,
          map: { width: map.width, height: map.height, data: map.data },
        };
      }),
    };
  }

  private async conceptLayers(body: RequestOf<'conceptLayers'>, ctx: RequestContext): Promise<ResultOf<'conceptLayers'>> {
    const { explainer } = await this.setup(body.spec, ctx);
    const layers: ConceptLayer[] = [];
    for (const n of explainer.graph.nodes) {
      if (!CONCEPT_LAYER_OPS.includes(n.opType)) continue;
      try {
        const l = conditionLayer(explainer, n.name);
        layers.push({ name: l.name, opType: l.opType, channels: l.channels });
      } catch {
        // no channel axis: nothing to condition on
      }
    }
    return { layers };
  }

  /** Relevance maximisation over a folder (scores per image and channel), kept in an index folder under `indexRoot`. */
  private async conceptIndex(body: RequestOf<'conceptIndex'>, ctx: RequestContext): Promise<ResultOf<'conceptIndex'>> {
    const t0 = performance.now();
    const setup = await this.setup(body.spec, ctx);
    const { explainer, rules, prep } = setup;
    const info = conditionLayer(explainer, body.layer);
    const files = listImages(body.folder);
    if (!files.length) throw new Error(`${body.folder}: no images to index`);
    const dir = indexDirFor(body.indexRoot, body.spec.modelPath, info.name, body.folder);
    mkdirSync(dir, { recursive: true });
    const key = atlasKey(body.spec.modelPath, info.name, rules, body.folder, files);
    let scores = readAtlasCache(dir, key);
    const cached = !!scores;
    if (!scores) {
      const stop = new AbortController();
      ctx.progress(`0/${files.length} images scored`);
      try {
        scores = await scanImages(explainer, files, {
          rules,
          layer: info.name,
          load: (f) => loadImageTensor(path.join(body.folder, f), prep),
          signal: stop.signal,
          onProgress: (done, total, file) => {
            ctx.progress(`${done}/${total} images scored (${file})`);
            try {
              ctx.check();
            } catch {
              stop.abort();
            }
          },
        });
      } catch (e) {
        if (stop.signal.aborted) throw new EngineCancelledError();
        throw e;
      }
      // a cancel that came during the last image: no scores are kept
      ctx.check();
      await this.checkUnchanged(body.spec.modelPath, setup.stat);
      writeAtlasCache(dir, key, scores);
    }
    const meta: IndexMeta = { model: path.resolve(body.spec.modelPath), layer: info.name, folder: path.resolve(body.folder), rules, images: files.length, written: Date.now() };
    writeFileSync(path.join(dir, INDEX_META_FILE), JSON.stringify(meta, null, 2) + '\n');
    return {
      layer: info.name,
      folder: body.folder,
      indexDir: dir,
      images: files.length,
      errors: scores.filter((s) => s.error).map((s) => ({ file: s.file, error: s.error as string })),
      cached,
      ms: performance.now() - t0,
    };
  }

  /** Reference crops of channels from the newest valid index of the model and layer. */
  private async conceptReferences(body: RequestOf<'conceptReferences'>, ctx: RequestContext): Promise<ResultOf<'conceptReferences'>> {
    const setup = await this.setup(body.spec, ctx);
    const { explainer, prep } = setup;
    const info = conditionLayer(explainer, body.layer);
    const found = findIndexes(body.indexRoot, body.spec.modelPath, info.name);
    if (!found.length) return { channels: [] };
    let use: { meta: IndexMeta; scores: ImageScores[] } | undefined;
    for (const { dir, meta } of found) {
      let files: string[];
      try {
        files = listImages(meta.folder);
      } catch {
        continue; // the folder is gone
      }
      const scores = readAtlasCache(dir, atlasKey(body.spec.modelPath, info.name, meta.rules, meta.folder, files));
      if (scores) {
        use = { meta, scores };
        break;
      }
    }
    if (!use)
      return {
        folder: found[0].meta.folder,
        stale: `the index of ${found[0].meta.folder} for layer '${info.name}' is out of date (the model or the folder changed since); index the folder again`,
        channels: [],
      };
    const { meta, scores } = use;
    ctx.progress(`reference crops of ${body.channels.length} channels…`);
    const crops = await referenceCrops(explainer, scores, body.channels, Math.max(1, body.perChannel), {
      rules: meta.rules,
      layer: info.name,
      load: (file) => loadImageTensor(path.join(meta.folder, file), prep),
      check: () => ctx.check(),
    });
    const small = await Promise.all(crops.map((c) => shrink(c.crop, body.maxSide)));
    return {
      folder: meta.folder,
      images: meta.images,
      channels: body.channels.map((channel) => ({
        channel,
        refs: crops
          .map((c, i) => ({ c, img: small[i] }))
          .filter(({ c }) => c.channel === channel)
          .map(({ c, img }) => ({ file: c.file, target: c.target, relevance: c.relevance, crop: { width: img.width, height: img.height, rgb: img.rgb } })),
      })),
    };
  }

  async dispose(): Promise<void> {
    const all = this.models;
    this.models = [];
    await Promise.all(all.map((m) => m.explainer.then((e) => e.dispose()).catch(() => undefined)));
  }
}

/** A layer as the host gets it; a vision transformer's token layer gets its patch tokens as the map. */
export function layerResult(l: LayerRelevance, layout: TokenLayout | null): LayerResult {
  const tokens = l.tokenSums && layout ? tokenRelevance(l.tokenSums, layout) : undefined;
  const map = l.map ?? tokens?.map;
  return {
    ...layerSummary(l),
    ...(map ? { map: { width: map.width, height: map.height, data: map.data } } : {}),
    ...(l.channelSums ? { channelSums: l.channelSums } : {}),
    ...(tokens && layout
      ? { tokens: { skip: layout.skip, leading: tokens.leading, ...(tokens.classShare !== undefined ? { classShare: tokens.classShare } : {}) } }
      : {}),
  };
}

/**
 * `shown` (the photo `original`, maybe smaller) with the part the model did not see dimmed and the
 * map placed on the part it saw, at the size of `shown`; both as they are when the model saw the
 * whole photo.
 */
function onPhoto(shown: RgbImage, original: RgbImage, map: RelevanceMap, region: Region | undefined): { photo: RgbImage; map: RelevanceMap } {
  if (!isPartial(region, original.width, original.height)) return { photo: shown, map };
  const { width: w, height: h } = shown;
  return {
    photo: { width: w, height: h, rgb: dimOutside(shown.rgb, w, h, region, original.width, original.height) },
    map: { width: w, height: h, data: placeMap(map, region, original.width, original.height, w, h) },
  };
}

/** The image with its longest side at most `maxSide`. */
async function shrink(img: RgbImage, maxSide: number): Promise<RgbImage> {
  const longest = Math.max(img.width, img.height);
  if (longest <= maxSide) return img;
  const f = maxSide / longest;
  return resizeImage(img, Math.max(1, Math.round(img.width * f)), Math.max(1, Math.round(img.height * f)));
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
