// How good is an explanation? Region perturbation (Samek et al. 2017, "Evaluating the
// visualization of what a deep neural network has learned") and localisation against an object
// mask. Used by `lrp-lens evaluate` and the tests.
//
// Region perturbation: the input is cut into P x P patches at the model's input size (edge patches
// smaller when P does not divide the side). Patches are ordered by their summed attribution
// (channel-summed map), most relevant first, ties by position. The first `area` share of the
// patches (default 25% of the image, at every input size) is replaced over K steps: step k has
// replaced the first round(k N / K) of the N patches, each by its own per-channel mean in the
// original input (default 'patch-mean': the patch's texture and edges are removed, its average
// colour kept; 'mean' and 'uniform' are options). One patch per step, as in Samek et al., touches
// too little of a small input to tell methods apart (50 2x2 patches are 5% of 64x64: every
// method, random included, scored near zero). The curve is the target logit
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
/** Share of the image area replaced by the last step. */
export const DEFAULT_AREA = 0.25;
export const DEFAULT_RANDOM_SEEDS = 5;

/**
 * Default patch side: 1/16 of the input side (14 at 224x224, 4 at 64x64), but at least 2: a
 * one-pixel patch replaced by its own mean would not change at all, and a 2x2 patch on a 64x64
 * input replaced by its mean keeps most of what the model sees (random scored as well as LRP).
 */
export function defaultPatch(height: number, width: number): number {
  return Math.max(2, Math.round(Math.min(height, width) / 16));
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

/**
 * How many patches have been replaced after each of the K steps: `area` of the N patches (at least
 * one), spread evenly over the steps (K is cut to that number when it is larger).
 */
export function stepCounts(nPatches: number, steps: number, area: number = DEFAULT_AREA): number[] {
  const total = Math.min(nPatches, Math.max(1, Math.round(area * nPatches)));
  const k = Math.min(steps, total);
  return Array.from({ length: k }, (_, i) => Math.round(((i + 1) * total) / k));
}

/** Share of the image's pixels inside the first `count` patches of `order`. */
export function perturbedShare(patches: Patch[], order: number[], count: number, height: number, width: number): number {
  let px = 0;
  for (let k = 0; k < count; k++) {
    const p = patches[order[k]];
    px += (p.y1 - p.y0) * (p.x1 - p.x0);
  }
  return px / (height * width);
}

/** x_1 .. x_K: the input with the first counts[k] patches of `order` replaced (see Perturbation). */
export function perturbedInputs(
  x: Tensor,
  input: ModelInputInfo,
  patches: Patch[],
  order: number[],
  counts: readonly number[],
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
  let done = 0;
  for (const count of counts) {
    for (; done < Math.min(count, order.length); done++) {
      const p = patches[order[done]];
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
  /** Share of the image's pixels replaced by the last step. */
  share: number;
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
  opts: { steps?: number; patch?: number; area?: number; f0?: number; perturbation?: Perturbation } = {},
): Promise<PerturbationResult> {
  const { height: H, width: W } = ex.input;
  const patch = opts.patch ?? defaultPatch(H, W);
  const patches = patchGrid(H, W, patch);
  const order = patchOrder(map, patches);
  const counts = stepCounts(patches.length, opts.steps ?? DEFAULT_STEPS, opts.area);
  const xs = perturbedInputs(x, ex.input, patches, order, counts, opts.perturbation);
  const f0 = opts.f0 ?? (await ex.forward(x))[target];
  const ys = await ex.forwardBatch(xs);
  const curve = [f0, ...ys.map((y) => y[target])];
  return { curve, aopc: aopcOf(curve), share: perturbedShare(patches, order, counts[counts.length - 1], H, W) };
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
  /** Patches replaced by the last step, and in all (the grid). */
  patches: number;
  patchCount: number;
  /** Share of the image's pixels replaced by the last step (the patches at the input size). */
  share: number;
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
  /** Share of the image area replaced by the last step (0 < area <= 1, default 0.25). */
  area?: number;
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
  const area = opts.area ?? DEFAULT_AREA;
  if (!(area > 0 && area <= 1)) throw new ModelError(`area must be a share of the image above 0 and at most 1, got ${area}`);
  const grid = patchGrid(H, W, patch);
  const counts = stepCounts(grid.length, steps, area);
  let share = Infinity;
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
        const r = await regionPerturbation(ex, x, a.map, target, { steps, patch, area, f0, perturbation: opts.perturbation });
        share = Math.min(share, r.share);
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
  // edge patches are smaller when P does not divide the side, so the share depends on each
  // method's order a little: the smallest is reported; without a finished method, full-size patches
  if (!Number.isFinite(share)) share = Math.min(1, (counts[counts.length - 1] * patch * patch) / (H * W));
  return {
    target,
    patch,
    steps: counts.length,
    patches: counts[counts.length - 1],
    patchCount: grid.length,
    share,
    perturbation: opts.perturbation ?? 'patch-mean',
    methods: out,
  };
}
