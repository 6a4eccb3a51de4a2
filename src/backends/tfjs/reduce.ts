// Reductions: the Reduce* family (NHWC values stay NHWC when the reduced axes are kept) and ArgMax.
import * as tf from '@tensorflow/tfjs';
import { attrInt, attrInts } from '../../engine/graph/graph';
import { type OpImpl, PHYS_AXIS, dims, inp, int, logical, normAxis, nums, opt, same, val } from './value';

const reduceOp =
  (fn: (t: tf.Tensor, axes: number[], keep: boolean) => tf.Tensor): OpImpl =>
  (c) => {
    const v = inp(c, 0);
    const axesIn = opt(c, 1);
    let axes = axesIn ? nums(axesIn) : attrInts(c.node, 'axes', undefined);
    const keep = attrInt(c.node, 'keepdims', 1) === 1;
    const rank = v.t.rank;
    if (!axes || axes.length === 0) {
      if (attrInt(c.node, 'noop_with_empty_axes', 0) === 1) return [same(v, tf.clone(v.t))];
      axes = [...Array(rank).keys()];
    }
    const la = axes.map((a) => normAxis(a, rank));
    if (v.nhwc && keep) return [val(fn(v.t, la.map((a) => PHYS_AXIS[a]), true), v.dtype, true)];
    return [val(fn(logical(v), la, keep), v.dtype)];
  };

/** The Reduce* family and ArgMax. */
export const REDUCE_OPS: Record<string, OpImpl> = {
  ReduceSum: reduceOp((t, a, k) => tf.sum(t, a, k)),
  ReduceMean: reduceOp((t, a, k) => tf.mean(t, a, k)),
  ReduceMax: reduceOp((t, a, k) => tf.max(t, a, k)),
  ReduceMin: reduceOp((t, a, k) => tf.min(t, a, k)),
  ReduceProd: reduceOp((t, a, k) => tf.prod(t, a, k)),
  ReduceL1: reduceOp((t, a, k) => tf.sum(tf.abs(t), a, k)),
  ReduceL2: reduceOp((t, a, k) => tf.sqrt(tf.sum(tf.square(t), a, k))),
  ReduceSumSquare: reduceOp((t, a, k) => tf.sum(tf.square(t), a, k)),
  ReduceLogSumExp: reduceOp((t, a, k) => tf.logSumExp(t, a, k)),
  ArgMax: (c) => {
    const v = inp(c, 0);
    const x = logical(v);
    const axis = normAxis(attrInt(c.node, 'axis', 0), x.rank);
    const keep = attrInt(c.node, 'keepdims', 1) === 1;
    let y: tf.Tensor;
    if (attrInt(c.node, 'select_last_index', 0) === 1) {
      const r = tf.argMax(tf.reverse(x, [axis]), axis);
      y = tf.sub(int(dims(x)[axis] - 1), r);
    } else y = tf.argMax(x, axis);
    if (keep) y = tf.expandDims(y, axis);
    return [val(y, 'int64')];
  },
};
