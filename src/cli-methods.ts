// `lrp-lens explain --method NAME` for the methods beside LRP, and `lrp-lens evaluate`:
// region perturbation (AOPC) and localisation against an object mask for several methods.
import { existsSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { RulesConfig, parseRulesConfig } from './engine/config';
import { DEFAULT_METHODS, Perturbation, evaluateMethods, loadMask } from './explain/evaluate';
import { Explainer } from './explain/explainer';
import { ModelError, Tensor } from './engine/graph/graph';
import { heatmapFile, type BlendOptions, type RelevanceMap } from './engine/io/heatmap';
import { inputBoundsFor, loadImageTensor, type RgbImage } from './engine/io/image';
import { dimOutside, isPartial, placeMap, type Region } from './engine/io/placement';
import { labelFor } from './engine/io/labels';
import { Method, parseMethod } from './explain/methods';
import { writeNpy } from './engine/io/npy';
import { topPredictions } from './explain/summary';
import {
  PREPROCESS_OPTIONS,
  UsageError,
  backendArg,
  cliModelConfig,
  heatmapSummary,
  intArg,
  joinNegativeNumbers,
  loadOptionsFrom,
  numberArg,
  preprocessFor,
  readInputNpy,
  rulesFrom,
} from './cli-args';

export { UsageError };

export const METHODS_USAGE = `  lrp-lens explain ... --method NAME [--layer NODE]
      NAME: lrp (default, with --composite/--rules), an LRP composite name, gradient,
      gradient-input, gradcam, cam or random
  lrp-lens evaluate --model M (--image I | --input X.npy) [--target N] [--methods a,b,c]
      [--steps K] [--patch P] [--area F] [--perturbation patch-mean|mean|uniform] [--mask MASK.png]
      [--layer NODE] [--rules FILE.json] [--attention cp|attnlrp] [--batch-norm pass|affine] [the preprocessing flags of explain]
      [--out-json S.json] [--backend ...]`;
/**
 * The photo with the part the model did not see dimmed, and the map placed on the part it saw
 * (at the photo's resolution); the map as it is when the model saw the whole photo.
 */
export function onPhoto(original: RgbImage, region: Region): { photo: RgbImage; place: (m: RelevanceMap) => RelevanceMap } {
  if (!isPartial(region, original.width, original.height)) return { photo: original, place: (m) => m };
  const { width: w, height: h } = original;
  return {
    photo: { width: w, height: h, rgb: dimOutside(original.rgb, w, h, region, w, h) },
    place: (m) => ({ width: w, height: h, data: placeMap(m, region, w, h, w, h) }),
  };
}

/**
 * The heatmap picture as drawn by --heatmap-mode and friends: over the photo (the part the model
 * did not see dimmed, the map placed on the part it saw), or alone when there is no photo.
 */
export async function photoHeatmapPng(original: RgbImage | undefined, map: RelevanceMap, region: Region | undefined, opts: BlendOptions = {}): Promise<Uint8Array> {
  if (!original || !region) return heatmapFile(original, map, opts);
  const { photo, place } = onPhoto(original, region);
  return heatmapFile(photo, place(map), opts);
}

/** `--method NAME` of `explain`: undefined for plain LRP (the existing path). */
export function methodArg(name: string | undefined, rules: RulesConfig): Method | undefined {
  if (name === undefined) return undefined;
  try {
    return parseMethod(name, rules);
  } catch (e) {
    throw new UsageError(`--method: ${(e as Error).message}`);
  }
}

/** explain with a method beside LRP: writes --out-relevance, --out-heatmap, --out-json and prints one line. */
export async function explainWithMethod(
  ex: Explainer,
  x: Tensor,
  o: {
    method: Method;
    target?: number;
    layer?: string;
    labels?: readonly string[];
    original?: RgbImage;
    /** The part of the photo the model saw (the map is placed there). */
    region?: Region;
    sources?: { preprocessing: string; labels: string; description: string };
    what: string;
    outRelevance?: string;
    outHeatmap?: string;
    picture?: BlendOptions & { view: 'overlay' | 'alone' | 'side'; percentile: number };
    outJson?: string;
    loadMs?: number;
    forwardMs?: number;
  },
): Promise<void> {
  const a = await ex.attribute(x, { method: o.method, target: o.target, layer: o.layer });
  if (o.outRelevance) writeFileSync(o.outRelevance, writeNpy(a.relevance));
  if (o.outHeatmap) writeFileSync(o.outHeatmap, await photoHeatmapPng(o.original, a.map, o.region, o.picture));
  let sum = 0;
  for (const v of a.map.data) sum += v;
  if (o.outJson) {
    const summary = {
      model: ex.modelPath,
      backend: ex.backendDetail,
      method: a.method,
      ...(a.layer ? { layer: a.layer } : {}),
      target: a.target,
      label: labelFor(o.labels, a.target),
      logit: a.logit,
      top5: topPredictions(a.logits, o.labels),
      relevanceSum: sum,
      ...(o.outHeatmap && o.picture ? { heatmap: heatmapSummary(a.map, o.picture) } : {}),
      ...(o.sources
        ? { preprocessing: { source: o.sources.preprocessing, description: o.sources.description }, labels: { source: o.sources.labels } }
        : {}),
      timings: { loadMs: o.loadMs, forwardMs: o.forwardMs, methodMs: a.timings.ms },
    };
    writeFileSync(o.outJson, JSON.stringify(summary, null, 2) + '\n');
  }
  process.stdout.write(
    `${o.what}: target ${a.target} (${labelFor(o.labels, a.target)}), logit ${a.logit.toFixed(4)}, ` +
      `${a.method}${a.layer ? ` at ${a.layer}` : ''}, map sum ${sum.toFixed(4)}, ${a.timings.ms.toFixed(1)} ms\n`,
  );
}

const EVALUATE_OPTIONS = {
  model: { type: 'string' },
  image: { type: 'string' },
  input: { type: 'string' },
  target: { type: 'string' },
  methods: { type: 'string' },
  steps: { type: 'string' },
  patch: { type: 'string' },
  area: { type: 'string' },
  perturbation: { type: 'string' },
  mask: { type: 'string' },
  layer: { type: 'string' },
  rules: { type: 'string' },
  epsilon: { type: 'string' },
  gamma: { type: 'string' },
  attention: { type: 'string' },
  'batch-norm': { type: 'string' },
  ...PREPROCESS_OPTIONS,
  labels: { type: 'string' },
  'random-seeds': { type: 'string' },
  'out-json': { type: 'string' },
  backend: { type: 'string' },
} as const;

const PERTURBATIONS: readonly Perturbation[] = ['patch-mean', 'mean', 'uniform'];




/** `lrp-lens evaluate ...` */
export async function evaluateCommand(args: string[]): Promise<void> {
  const joined = joinNegativeNumbers(args, new Set(['--target', '--mean', '--std', '--epsilon', '--gamma']));
  let values: ReturnType<typeof parseArgs<{ options: typeof EVALUATE_OPTIONS; strict: true; allowPositionals: false }>>['values'];
  try {
    values = parseArgs({ args: joined, options: EVALUATE_OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new UsageError(`evaluate: ${(e as Error).message}`);
  }
  if (!values.model) throw new UsageError('evaluate: --model is required');
  if (!values.image === !values.input) throw new UsageError('evaluate: give exactly one of --image or --input');
  const target = intArg('target', values.target, 0);
  const steps = intArg('steps', values.steps, 1);
  const patch = intArg('patch', values.patch, 1);
  const seeds = intArg('random-seeds', values['random-seeds'], 1);
  const area = numberArg('area', values.area);
  if (area !== undefined && !(area > 0 && area <= 1))
    throw new UsageError(`--area: expected the share of the image to perturb, above 0 and at most 1 (e.g. 0.25), got '${values.area}'`);
  const perturbation = (values.perturbation ?? 'patch-mean') as Perturbation;
  if (!PERTURBATIONS.includes(perturbation))
    throw new UsageError(`--perturbation: unknown '${values.perturbation}' (${PERTURBATIONS.join(', ')})`);
  const backend = backendArg(values.backend);
  if (values.mask && !existsSync(values.mask)) throw new UsageError(`${values.mask}: mask file not found`);
  const raw = rulesFrom(values);
  const where = values.rules ?? 'rules';
  const methodNames = values.methods ? values.methods.split(',').map((s) => s.trim()).filter(Boolean) : [...DEFAULT_METHODS];
  const probe = parseRulesConfig(raw, where);
  for (const m of methodNames) methodArgOrThrow(m, probe);

  const npyInput = values.input ? readInputNpy(values.input) : undefined;
  const config = await cliModelConfig(values, values.model);
  const ex = await Explainer.load(values.model, { ...loadOptionsFrom(values, npyInput, config.preprocessing.size), backend });
  try {
    const { channels, width, height } = ex.input;
    const pre = () => preprocessFor(config, ex);
    const x: Tensor = npyInput ?? (await loadImageTensor(values.image as string, pre())).tensor;
    if (raw.inputBounds === undefined && (channels === 1 || channels === 3)) raw.inputBounds = inputBoundsFor(pre());
    const rules = parseRulesConfig(raw, where);
    if (target !== undefined && target >= ex.numClasses)
      throw new UsageError(`--target ${target}: the model has ${ex.numClasses} classes (0 to ${ex.numClasses - 1})`);
    const mask = values.mask ? await loadMask(values.mask, width, height) : undefined;
    const r = await evaluateMethods(ex, x, {
      methods: methodNames,
      rules,
      target,
      steps,
      patch,
      area,
      mask,
      layer: values.layer,
      randomSeeds: seeds,
      perturbation,
    });
    const out = { model: values.model, input: values.image ?? values.input, ...r };
    if (values['out-json']) writeFileSync(values['out-json'], JSON.stringify(out, null, 2) + '\n');
    process.stdout.write(
      `${values.image ?? values.input}: target ${r.target}, ${r.patches} of ${r.patchCount} ${r.patch}x${r.patch} patches replaced (${r.perturbation}) ` +
        `over ${r.steps} steps: ${(r.share * 100).toFixed(1)}% of the image perturbed by the last step\n`,
    );
    const w = Math.max(6, ...r.methods.map((m) => m.name.length));
    process.stdout.write(`  ${'method'.padEnd(w)}  ${'AOPC'.padStart(8)}${mask ? '  localisation' : ''}\n`);
    for (const m of r.methods) {
      if (m.error) process.stdout.write(`  ${m.name.padEnd(w)}  ${m.error}\n`);
      else
        process.stdout.write(
          `  ${m.name.padEnd(w)}  ${(m.aopc as number).toFixed(4).padStart(8)}` +
            (mask ? `  ${m.localisation == null ? '-' : m.localisation.toFixed(2)}` : '') +
            '\n',
        );
    }
  } catch (e) {
    if (e instanceof ModelError && /^unknown method/.test(e.message)) throw new UsageError(`--methods: ${e.message}`);
    throw e;
  } finally {
    await ex.dispose();
  }
}

function methodArgOrThrow(name: string, rules: RulesConfig): Method {
  try {
    return parseMethod(name, rules);
  } catch (e) {
    throw new UsageError(`--methods: ${(e as Error).message}`);
  }
}


