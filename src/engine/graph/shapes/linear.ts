// Shape rules of matrix products: Gemm (with transposes) and MatMul (batch axes broadcast, 1-D
// operands promoted and dropped again).
import { ShapeFn, broadcastDims } from './context';

const gemm: ShapeFn = (c) => {
  const a = c.in(0).dims;
  const b = c.in(1).dims;
  const [m, k1] = c.int('transA', 0) ? [a[1], a[0]] : [a[0], a[1]];
  const [k2, n] = c.int('transB', 0) ? [b[1], b[0]] : [b[0], b[1]];
  if (k1 !== k2) throw c.err(`inner dimensions differ: ${k1} vs ${k2}`);
  return [{ dtype: c.in(0).dtype, dims: [m, n] }];
};

const matmul: ShapeFn = (c) => {
  const a = c.in(0).dims;
  const b = c.in(1).dims;
  const a2 = a.length === 1 ? [1, a[0]] : a;
  const b2 = b.length === 1 ? [b[0], 1] : b;
  if (a2[a2.length - 1] !== b2[b2.length - 2]) throw c.err(`cannot multiply [${a}] by [${b}]`);
  const batch = broadcastDims([a2.slice(0, -2), b2.slice(0, -2)], () => c.err(`cannot broadcast [${a}] and [${b}]`));
  const dims = [...batch];
  if (a.length > 1) dims.push(a2[a2.length - 2]);
  if (b.length > 1) dims.push(b2[b2.length - 1]);
  return [{ dtype: c.in(0).dtype, dims }];
};

/** Gemm and MatMul. */
export const LINEAR_SHAPES: Record<string, ShapeFn> = {
  Gemm: gemm,
  MatMul: matmul,
};
