// How good is an explanation? Region perturbation (Samek et al. 2017, "Evaluating the
// visualization of what a deep neural network has learned") and localisation against an object
// mask. Used by `lrp-lens evaluate` and the tests.
//
// Region perturbation: the input is cut into P x P patches at the model's input size (edge patches
// smaller when P does not divide the side). Patches are ordered by their summed attribution
// (channel-summed map), most relevant first, ties by position. Step k replaces patch k, on top of
// the earlier ones, by its own per-channel mean in the original input (default 'patch-mean': the
// patch's texture and edges are removed, its average colour kept; 'mean' and 'uniform' are
// options). The curve is the target logit
// f(x_0), f(x_1), ..., f(x_K) with x_0 = x; AOPC = 1/(K+1) sum_{k=0..K} (f(x_0) - f(x_k)), as in
// Samek et al. Higher AOPC = the map finds what the model relies on. `random` averages
// several seeds.
import { DEFAULT_COMPARE_METHODS, RulesConfig } from '../engine/config';
import type { Explainer } from './explainer';
import { ModelError, Tensor } from '../engine/graph/graph';
import { AttributionMap, Method, parseMethod, seededRandom } from './methods';
import { ModelInputInfo } from '../engine/types';

export const DEFAULT_METHODS = [...DEFAULT_COMPARE_METHODS, 'random'] as const;

export const DEFAULT_STEPS = 50;
export const DEFAULT_RANDOM_SEEDS = 5;

/**
 * Default patch side: 1/28 of the input side (8 at 224x224, as in Samek et al.), but at least 2:
 * a one-pixel patch replaced by its own mean would not change at all.
 */
export function defaultPatch(height: number, width: number): number {
  return Math.max(2, Math.round(Math.min(height, width) / 28));
}

export interface Patch {
  y0: number;
  x0: number;
  y1: number;
  x1: number;
}

export function patchGrid(height: number, width: number, patch: number): Patch[] {
  const out: Patch[] = [];
  for (let y0 = 0; y0 < height; y0 += patch)
    for (let x0 = 0; x0 < width; x0 += patch)
      out.push({ y0, x0, y1: Math.min(y0 + patch, height), x1: Math.min(x0 + patch, width) });
  return out;
}

/** Patch indices by summed map value, most relevant first (ties: row-major order). */
export function patchOrder(map: AttributionMap, patches: Patch[]): number[] {
  const sums = patches.map((p) => {
    let s = 0;
    for (let y = p.y0; y < p.y1; y++) for (let x = p.x0; x < p.x1; x++) s += map.data[y * map.width + x];
    return s;
  });
  return patches.map((_, i) => i).sort((a, b) => sums[b] - sums[a] || a - b);
}

/** x_1 .. x_K: the input with the first k patches of `order` replaced by their per-channel means. */
export function perturbedInputs(
  x: Tensor,
  input: ModelInputInfo,
  patches: Patch[],
  order: number[],
  steps: number,
  mode: Perturbation = 'patch-mean',
): Tensor[] {
  const { channels: C, height: H, width: W } = input;
  const nchw = input.layout === 'NCHW';
  const at = (c: number, y: number, xx: number) => (nchw ? (c * H + y) * W + xx : (y * W + xx) * C + c);
  const src = x.data as Float32Array;
  const cur = Float32Array.from(src);
  const out: Tensor[] = [];
  const imageMean = new Float32Array(C);
  const lo = new Float32Array(C).fill(Infinity);
  const hi = new Float32Array(C).fill(-Infinity);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let y = 0; y < H; y++)
      for (let xx = 0; xx < W; xx++) {
        const v = src[at(c, y, xx)];
        s += v;
        lo[c] = Math.min(lo[c], v);
        hi[c] = Math.max(hi[c], v);
      }
    imageMean[c] = s / (H * W);
  }
  // 'uniform': one fixed noise image (seeded), uniform in each channel's range in x
  const noise = new Float32Array(src.length);
  if (mode === 'uniform') {
    const rnd = seededRandom(1234);
    for (let c = 0; c < C; c++)
      for (let y = 0; y < H; y++) for (let xx = 0; xx < W; xx++) noise[at(c, y, xx)] = lo[c] + rnd() * (hi[c] - lo[c]);
  }
  for (let k = 0; k < Math.min(steps, order.length); k++) {
    const p = patches[order[k]];
    const n = (p.y1 - p.y0) * (p.x1 - p.x0);
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let y = p.y0; y < p.y1; y++) for (let xx = p.x0; xx < p.x1; xx++) s += src[at(c, y, xx)];
      const mean = mode === 'patch-mean' ? s / n : imageMean[c];
      for (let y = p.y0; y < p.y1; y++)
        for (let xx = p.x0; xx < p.x1; xx++) {
          const i = at(c, y, xx);
          cur[i] = mode === 'uniform' ? noise[i] : mean;
        }
    }
    out.push({ dtype: 'float32', dims: [...x.dims], data: Float32Array.from(cur) });
  }
  return out;
}

/**
 * What a removed patch becomes: 'patch-mean' (default) = the patch's own per-channel mean;
 * 'mean' = the per-channel mean of the whole input; 'uniform' = fixed seeded noise, uniform in
 * each channel's range in the input (Samek et al.'s choice).
 */
export type Perturbation = 'mean' | 'patch-mean' | 'uniform';

export interface PerturbationResult {
  /** f(x_0) .. f(x_K): the target logit before and after each step. */
  curve: number[];
  aopc: number;
}

export function aopcOf(curve: number[]): number {
  let s = 0;
  for (const v of curve) s += curve[0] - v;
  return s / curve.length;
}

/** Region perturbation of `x` along `map` for `target`; forward passes batched where possible. */
export async function regionPerturbation(
  ex: Explainer,
  x: Tensor,
  map: AttributionMap,
  target: number,
  opts: { steps?: number; patch?: number; f0?: number; perturbation?: Perturbation } = {},
): Promise<PerturbationResult> {
  const { height: H, width: W } = ex.input;
  const patch = opts.patch ?? defaultPatch(H, W);
  const patches = patchGrid(H, W, patch);
  const xs = perturbedInputs(x, ex.input, patches, patchOrder(map, patches), opts.steps ?? DEFAULT_STEPS, opts.perturbation);
  const f0 = opts.f0 ?? (await ex.forward(x))[target];
  const ys = await ex.forwardBatch(xs);
  const curve = [f0, ...ys.map((y) => y[target])];
  return { curve, aopc: aopcOf(curve) };
}

/**
 * (share of the positive attribution inside the mask) / (the mask's share of the image area):
 * 1 = no better than uniform. null when the map has no positive part or the mask is empty.
 */
export function localisation(map: AttributionMap, mask: Uint8Array): number | null {
  if (mask.length !== map.data.length) throw new Error(`mask of ${mask.length} pixels for a ${map.width}x${map.height} map`);
  let inside = 0;
  let total = 0;
  let area = 0;
  for (let i = 0; i < mask.length; i++) {
    const v = map.data[i] > 0 ? map.data[i] : 0;
    total += v;
    if (mask[i]) {
      inside += v;
      area++;
    }
  }
  if (total <= 0 || area === 0) return null;
  return inside / total / (area / mask.length);
}

/** An object mask image (white = object) as 0/1 per pixel at the model's input size. */
export async function loadMask(path: string, width: number, height: number): Promise<Uint8Array> {
  const { decodeImage, resizeImage } = await import('../engine/io/image');
  const img = await resizeImage(await decodeImage(path), width, height);
  const out = new Uint8Array(width * height);
  for (let p = 0; p < out.length; p++) {
    const luma = 0.299 * img.rgb[p * 3] + 0.587 * img.rgb[p * 3 + 1] + 0.114 * img.rgb[p * 3 + 2];
    out[p] = luma >= 128 ? 1 : 0;
  }
  return out;
}

export interface MethodScore {
  name: string;
  aopc?: number;
  curve?: number[];
  localisation?: number | null;
  /** Set instead of the scores when the method does not apply (e.g. cam) or failed. */
  error?: string;
}

export interface EvaluationResult {
  target: number;
  patch: number;
  steps: number;
  perturbation: Perturbation;
  methods: MethodScore[];
}

export interface EvaluateOptions {
  /** Method names: gradient, gradient-input, gradcam, cam, random, lrp, or an LRP composite. */
  methods?: readonly string[];
  /** Rules for the LRP methods (the composite is replaced per method); inputBounds for zbox. */
  rules: RulesConfig;
  target?: number;
  steps?: number;
  patch?: number;
  /** 0/1 per pixel at the input size: adds `localisation` per method. */
  mask?: Uint8Array;
  /** gradcam's layer. */
  layer?: string;
  randomSeeds?: number;
  perturbation?: Perturbation;
}

/** Region perturbation (and localisation with a mask) for several methods on one input. */
export async function evaluateMethods(ex: Explainer, x: Tensor, opts: EvaluateOptions): Promise<EvaluationResult> {
  const names = opts.methods ?? DEFAULT_METHODS;
  const methods: [string, Method][] = names.map((n) => [n, parseMethod(n, opts.rules)]);
  const { height: H, width: W } = ex.input;
  const steps = opts.steps ?? DEFAULT_STEPS;
  if (!Number.isInteger(steps) || steps < 1) throw new ModelError(`steps must be a positive integer, got ${steps}`);
  const patch = opts.patch ?? defaultPatch(H, W);
  if (!Number.isInteger(patch) || patch < 1 || patch > Math.max(H, W))
    throw new ModelError(`patch must be an integer from 1 to ${Math.max(H, W)}, got ${patch}`);
  const logits = await ex.forward(x);
  let target = opts.target ?? 0;
  if (opts.target === undefined) for (let i = 1; i < logits.length; i++) if (logits[i] > logits[target]) target = i;
  const f0 = logits[target];
  const out: MethodScore[] = [];
  for (const [name, method] of methods) {
    try {
      const seeds = method === 'random' ? Array.from({ length: opts.randomSeeds ?? DEFAULT_RANDOM_SEEDS }, (_, i) => i) : [0];
      let curve: number[] | undefined;
      let loc: number | null | undefined;
      let locCount = 0;
      for (const seed of seeds) {
        const a = await ex.attribute(x, { method, target, layer: opts.layer, seed });
        const r = await regionPerturbation(ex, x, a.map, target, { steps, patch, f0, perturbation: opts.perturbation });
        curve = curve ? curve.map((v, i) => v + r.curve[i]) : r.curve;
        if (opts.mask) {
          const l = localisation(a.map, opts.mask);
          if (l !== null) {
            loc = (loc ?? 0) + l;
            locCount++;
          } else if (loc === undefined) loc = null;
        }
      }
      const mean = (curve as number[]).map((v) => v / seeds.length);
      const score: MethodScore = { name, aopc: aopcOf(mean), curve: mean };
      if (opts.mask) score.localisation = locCount ? (loc as number) / locCount : null;
      out.push(score);
    } catch (e) {
      out.push({ name, error: (e as Error).message });
    }
  }
  return { target, patch, steps: Math.min(steps, patchGrid(H, W, patch).length), perturbation: opts.perturbation ?? 'patch-mean', methods: out };
}
