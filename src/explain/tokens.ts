// The relevance of a transformer layer's tokens as the panel shows it: the patch tokens on the
// patch grid (a map like a CNN layer's), the leading tokens (class, distillation) as numbers.
import type { TokenLayout } from './methods';

export interface TokenRelevance {
  /** The patch tokens' relevance on the patch grid, row-major (token skip + y * width + x at (x, y)). */
  map: { width: number; height: number; data: Float32Array };
  /** Relevance of the leading tokens (index 0: the class token). */
  leading: number[];
  /**
   * The class token's share of the layer's token relevance, R_cls / sum_t R_t (signed); absent
   * without leading tokens or when the sum is zero against the tokens' magnitudes.
   */
  classShare?: number;
}

/** Sums this far below the sum of |R_t| count as zero: no share is given. */
const ZERO_SUM = 1e-9;

/** Lays out per-token relevance ([T]) on the patch grid; undefined when T is not skip + height * width. */
export function tokenRelevance(tokenSums: ArrayLike<number>, layout: TokenLayout): TokenRelevance | undefined {
  const { skip, height, width } = layout;
  if (tokenSums.length !== skip + height * width) return undefined;
  const data = new Float32Array(height * width);
  let total = 0;
  let l1 = 0;
  for (let t = 0; t < tokenSums.length; t++) {
    const v = tokenSums[t];
    total += v;
    l1 += Math.abs(v);
    if (t >= skip) data[t - skip] = v;
  }
  const leading = Array.from({ length: skip }, (_, t) => tokenSums[t]);
  const out: TokenRelevance = { map: { width, height, data }, leading };
  if (skip > 0 && Number.isFinite(total) && Math.abs(total) > ZERO_SUM * l1) out.classShare = leading[0] / total;
  return out;
}
