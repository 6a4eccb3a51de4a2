// Shape rules of reductions (axes from an input or an attribute, keepdims, noop_with_empty_axes)
// and of TopK.
import { NodeCtx, ShapeFn } from './context';

function reduceDims(c: NodeCtx, dims: number[], axes: number[] | undefined): number[] {
  const keep = c.int('keepdims', 1) === 1;
  if (!axes || axes.length === 0) {
    if (c.int('noop_with_empty_axes', 0)) return [...dims];
    axes = dims.map((_, i) => i);
  }
  const set = new Set(axes.map((a) => c.axis(a, dims.length)));
  return dims.flatMap((d, i) => (set.has(i) ? (keep ? [1] : []) : [d]));
}

const reduce: ShapeFn = (c) => {
  const x = c.in(0);
  const axes = c.has(1) ? c.opt(1) : c.ints('axes');
  return [{ dtype: x.dtype, dims: reduceDims(c, x.dims, axes) }];
};

const argReduce: ShapeFn = (c) => [{ dtype: 'int64', dims: reduceDims(c, c.in(0).dims, [c.int('axis', 0)]) }];

const topK: ShapeFn = (c) => {
  const d = [...c.in(0).dims];
  const [k] = c.need(1);
  d[c.axis(c.int('axis', -1), d.length)] = k;
  return [{ dtype: c.in(0).dtype, dims: d }, { dtype: 'int64', dims: [...d] }];
};

/** The Reduce* family, ArgMax, ArgMin and TopK. */
export const REDUCE_SHAPES: Record<string, ShapeFn> = {
  ReduceMean: reduce,
  ReduceSum: reduce,
  ReduceMax: reduce,
  ReduceMin: reduce,
  ReduceProd: reduce,
  ReduceL1: reduce,
  ReduceL2: reduce,
  ReduceSumSquare: reduce,
  ReduceLogSumExp: reduce,
  ArgMax: argReduce,
  ArgMin: argReduce,
  TopK: topK,
};
