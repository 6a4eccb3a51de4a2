// How well float32 arithmetic determines an explanation: the relevance is recomputed for inputs
// moved by one float32 ulp (x * (1 +- 2^-24), rounded; random signs) and compared with the
// original. Every float32 implementation rounds each layer's values by at least that much, so a
// large change means the map partly reflects rounding, not the model (typically a tiny epsilon
// dividing by near-zero denominators). On the reference fixtures the measure tracks the
// reference library's own float32-versus-float64 distance.
import type { Tensor } from '../engine/graph/graph';
import { seededRandom } from '../engine/random';

/** Above this relative change the CLI and the panel warn that rounding shapes the map. */
export const UNSTABLE_REL_L2 = 1e-2;
/** Perturbed explanations per check (the measure is their worst change). */
export const STABILITY_DRAWS = 3;

export interface Stability {
  /** The largest relative L2 change of the relevance over the draws. */
  ulpRelL2: number;
  draws: number;
  /** ulpRelL2 >= UNSTABLE_REL_L2 */
  unstable: boolean;
}

/** ||a - b||_2 / ||b||_2 in float64 (0 when both are zero). */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relL2: lengths differ (${a.length} vs ${b.length})`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  return num === 0 ? 0 : Math.sqrt(num) / Math.sqrt(den);
}

/** `x` with every element moved by about one float32 ulp, signs drawn from `seed`. */
export function ulpPerturbed(x: Tensor, seed: number): Tensor {
  const r = seededRandom(seed);
  const data = Float32Array.from(x.data as Float32Array, (v) => v * (1 + (r() < 0.5 ? -1 : 1) * 2 ** -24));
  return { ...x, data };
}

/**
 * The largest relL2 change of `explain`'s output over `draws` one-ulp perturbations of `x`
 * (seeds 1..draws). `base` is the output for `x` itself when already computed.
 */
export async function ulpSensitivity(
  explain: (x: Tensor) => Promise<ArrayLike<number>>,
  x: Tensor,
  draws = 3,
  base?: ArrayLike<number>,
): Promise<number> {
  const ref = base ?? (await explain(x));
  let worst = 0;
  for (let s = 1; s <= draws; s++) worst = Math.max(worst, relL2(await explain(ulpPerturbed(x, s)), ref));
  return worst;
}
