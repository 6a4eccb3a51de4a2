// Normalisation ops: BatchNormalization as a per-channel affine map (its folded scale and shift
// cached for constant statistics), LayerNormalization, Softmax and LogSoftmax along any axis.
import * as tf from '@tensorflow/tfjs';
import { attrInt } from '../../engine/graph/graph';
import { type OpImpl, type Val, constKey, dims, inp, logical, normAxis, opt, same, val } from './value';

/** Apply a per-channel (axis 1) vector to a value, keeping its physical form. */
function channelShape(v: Val): number[] {
  const r = v.t.rank;
  const d = dims(v.t);
  if (v.nhwc) return [1, 1, 1, d[3]];
  const s = new Array<number>(r).fill(1);
  if (r > 1) s[1] = d[1];
  else s[0] = d[0];
  return s;
}

const softmaxLike =
  (fn: (t: tf.Tensor) => tf.Tensor): OpImpl =>
  (c) => {
    const v = inp(c, 0);
    const x = logical(v);
    const axis = normAxis(attrInt(c.node, 'axis', -1), x.rank);
    if (axis === x.rank - 1) return [val(fn(x), v.dtype)];
    const perm = [...Array(x.rank).keys()];
    perm[axis] = x.rank - 1;
    perm[x.rank - 1] = axis;
    return [val(tf.transpose(fn(tf.transpose(x, perm)), perm), v.dtype)];
  };

/** BatchNormalization (channel-wise, keeps NHWC), LayerNormalization, Softmax and LogSoftmax. */
export const NORMALISATION_OPS: Record<string, OpImpl> = {
  BatchNormalization: (c) => {
    const v = inp(c, 0);
    const eps = attrInt(c.node, 'epsilon', 1e-5);
    const keys = [1, 2, 3, 4].map((i) => constKey(c, i));
    const make = () => {
      const scale = logical(inp(c, 1));
      const bias = logical(inp(c, 2));
      const mean = logical(inp(c, 3));
      const variance = logical(inp(c, 4));
      const a = tf.div(scale, tf.sqrt(tf.add(variance, eps)));
      return tf.stack([a, tf.sub(bias, tf.mul(mean, a))]);
    };
    const ab = keys.every((k) => k) ? c.derive(`${keys.join('|')}|bn|${eps}`, make) : make();
    const [a, b] = tf.unstack(ab);
    const s = channelShape(v);
    return [same(v, tf.add(tf.mul(v.t, tf.reshape(a, s)), tf.reshape(b, s)))];
  },
  LayerNormalization: (c) => {
    // y = (x - mean) * invStdDev * scale + bias over the axes from `axis` on; outputs Y, Mean, InvStdDev
    const x = logical(inp(c, 0));
    const axis = normAxis(attrInt(c.node, 'axis', -1), x.rank);
    const eps = attrInt(c.node, 'epsilon', 1e-5);
    const axes = Array.from({ length: x.rank - axis }, (_, i) => axis + i);
    const mean = tf.mean(x, axes, true);
    const d = tf.sub(x, mean);
    const inv = tf.rsqrt(tf.add(tf.mean(tf.square(d), axes, true), eps));
    let y = tf.mul(tf.mul(d, inv), logical(inp(c, 1)));
    const bias = opt(c, 2);
    if (bias) y = tf.add(y, logical(bias));
    return [val(y, 'float32'), val(mean, 'float32'), val(inv, 'float32')];
  },
  Softmax: softmaxLike((t) => tf.softmax(t)),
  LogSoftmax: softmaxLike((t) => tf.logSoftmax(t)),
};
