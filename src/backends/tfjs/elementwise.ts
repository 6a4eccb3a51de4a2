// Element-wise ops: operands keep their physical form (NHWC values stay NHWC when the others are
// brought to it), so a chain of convs and activations never transposes.
import * as tf from '@tensorflow/tfjs';
import { type DType, attrInt, attrString } from '../../engine/graph/graph';
import { type Ctx, type OpImpl, type Val, TO_NHWC, broadcastShapes, fail, inp, logical, nums, opt, same, tfDtype, val } from './value';


/** Bring element-wise operands to one physical form; returns tensors and whether output is NHWC. */
function align(vals: Val[]): { ts: tf.Tensor[]; nhwc: boolean } {
  const rank = Math.max(...vals.map((v) => v.t.rank));
  if (rank !== 4 || !vals.some((v) => v.nhwc)) return { ts: vals.map(logical), nhwc: false };
  const ts = vals.map((v) => {
    if (v.nhwc) return v.t;
    const r = v.t.rank;
    const t4 = r === 4 ? v.t : tf.reshape(v.t, [...new Array<number>(4 - r).fill(1), ...v.t.shape]);
    return tf.transpose(t4, TO_NHWC);
  });
  return { ts, nhwc: true };
}

function binary(fn: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, outDtype?: DType): OpImpl {
  return (c) => {
    const a = inp(c, 0);
    const b = inp(c, 1);
    const { ts, nhwc } = align([a, b]);
    return [val(fn(ts[0], ts[1]), outDtype ?? a.dtype, nhwc)];
  };
}

function unary(fn: (x: tf.Tensor, c: Ctx) => tf.Tensor, outDtype?: DType): OpImpl {
  return (c) => {
    const x = inp(c, 0);
    return [val(fn(x.t, c), outDtype ?? x.dtype, x.nhwc)];
  };
}

function variadic(fn: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): OpImpl {
  return (c) => {
    const vs = c.inputs.filter((v): v is Val => !!v);
    const { ts, nhwc } = align(vs);
    let acc = ts[0];
    for (let i = 1; i < ts.length; i++) acc = fn(acc, ts[i]);
    return [val(acc, vs[0].dtype, nhwc)];
  };
}

function castTo(t: tf.Tensor, to: DType): tf.Tensor {
  const target = tfDtype(to);
  if (t.dtype === target) return tf.clone(t);
  if (target === 'int32' && t.dtype === 'float32') return tf.cast(tf.sign(t).mul(tf.floor(tf.abs(t))), 'int32');
  return tf.cast(t, target);
}

const ONNX_TYPES: Record<number, DType> = { 1: 'float32', 2: 'uint8', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float32', 11: 'float64' };

function clipBound(c: Ctx, i: number, attr: string, dflt: number): number | tf.Tensor {
  const v = opt(c, i);
  if (!v) return c.node.attrs[attr] ? attrInt(c.node, attr, dflt) : dflt;
  if (v.host) return nums(v)[0];
  return v.t;
}

/** Arithmetic, comparisons and logic (broadcasting), activations, Clip and Cast. */
export const ELEMENTWISE_OPS: Record<string, OpImpl> = {
  Add: binary(tf.add),
  Sub: binary(tf.sub),
  Mul: binary(tf.mul),
  Div: binary((a, b) => (a.dtype === 'int32' ? tf.cast(tf.div(tf.cast(a, 'float32'), tf.cast(b, 'float32')), 'int32') : tf.div(a, b))),
  Pow: binary(tf.pow),
  Max: variadic(tf.maximum),
  Min: variadic(tf.minimum),
  Sum: variadic(tf.add),
  Mean: (c) => {
    const vs = c.inputs.filter((v): v is Val => !!v);
    const { ts, nhwc } = align(vs);
    let acc = ts[0];
    for (let i = 1; i < ts.length; i++) acc = tf.add(acc, ts[i]);
    return [val(tf.div(acc, vs.length), 'float32', nhwc)];
  },
  Less: binary(tf.less, 'bool'),
  LessOrEqual: binary(tf.lessEqual, 'bool'),
  Greater: binary(tf.greater, 'bool'),
  GreaterOrEqual: binary(tf.greaterEqual, 'bool'),
  Equal: binary(tf.equal, 'bool'),
  And: binary(tf.logicalAnd, 'bool'),
  Or: binary(tf.logicalOr, 'bool'),
  Not: unary((x) => tf.logicalNot(x), 'bool'),
  Where: (c) => {
    const cond = inp(c, 0);
    const a = inp(c, 1);
    const b = inp(c, 2);
    const { ts, nhwc } = align([cond, a, b]);
    const shape = broadcastShapes(broadcastShapes(ts[0].shape, ts[1].shape), ts[2].shape);
    const y = tf.where(tf.broadcastTo(ts[0], shape), tf.broadcastTo(ts[1], shape), tf.broadcastTo(ts[2], shape));
    return [val(y, a.dtype, nhwc)];
  },
  Neg: unary(tf.neg),
  Abs: unary(tf.abs),
  Sign: unary(tf.sign),
  Sqrt: unary(tf.sqrt),
  Exp: unary(tf.exp),
  Log: unary(tf.log),
  Reciprocal: unary(tf.reciprocal),
  Floor: unary(tf.floor),
  Ceil: unary(tf.ceil),
  Relu: unary(tf.relu),
  Sigmoid: unary(tf.sigmoid),
  Tanh: unary(tf.tanh),
  Softplus: unary(tf.softplus),
  Selu: unary((x, c) => {
    const alpha = attrInt(c.node, 'alpha', 1.67326319217681884765625);
    const gamma = attrInt(c.node, 'gamma', 1.05070102214813232421875);
    return tf.mul(tf.where(tf.greater(x, 0), x, tf.mul(tf.sub(tf.exp(x), 1), alpha)), gamma);
  }),
  LeakyRelu: unary((x, c) => tf.leakyRelu(x, attrInt(c.node, 'alpha', 0.01))),
  Elu: unary((x, c) => {
    const alpha = attrInt(c.node, 'alpha', 1);
    return alpha === 1 ? tf.elu(x) : tf.where(tf.greater(x, 0), x, tf.mul(tf.sub(tf.exp(x), 1), alpha));
  }),
  HardSigmoid: unary((x, c) =>
    tf.clipByValue(tf.add(tf.mul(x, attrInt(c.node, 'alpha', 0.2)), attrInt(c.node, 'beta', 0.5)), 0, 1),
  ),
  HardSwish: unary((x) => tf.mul(x, tf.clipByValue(tf.add(tf.mul(x, 1 / 6), 0.5), 0, 1))),
  Clip: (c) => {
    const v = inp(c, 0);
    const lo = clipBound(c, 1, 'min', -Infinity);
    const hi = clipBound(c, 2, 'max', Infinity);
    if (typeof lo === 'number' && typeof hi === 'number') {
      const t = v.t.dtype === 'int32' ? tf.minimum(tf.maximum(v.t, lo), hi) : tf.clipByValue(v.t, lo, hi);
      return [same(v, t)];
    }
    return [same(v, tf.minimum(tf.maximum(v.t, lo), hi))];
  },
  Erf: unary(tf.erf),
  Gelu: unary((x, c) => {
    if (attrString(c.node, 'approximate', 'none') === 'tanh') {
      const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
    }
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
  }),
  Cast: (c) => {
    const v = inp(c, 0);
    const to = ONNX_TYPES[attrInt(c.node, 'to', 1)];
    if (!to) fail(c, `cast to type ${attrInt(c.node, 'to', 1)} is not supported`);
    return [val(castTo(v.t, to), to, v.nhwc)];
  },
};
