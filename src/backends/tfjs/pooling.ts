// Pooling ops on NHWC values: max (with ONNX indices), average (with or without the pads counted),
// global; ceil mode and padding as ONNX defines them.
import * as tf from '@tensorflow/tfjs';
import { attrInt, attrInts } from '../../engine/graph/graph';
import { type OpImpl, type Ctx, fail, inp, int, val } from './value';
import { type Geo2, geometry, spatialInput, spatialOutput } from './window';

function poolGeometry(c: Ctx, x: tf.Tensor4D, oneD: boolean): { g: Geo2; out: [number, number]; extra: [number, number] } {
  const ks = attrInts(c.node, 'kernel_shape', undefined);
  if (!ks) fail(c, 'kernel_shape is missing');
  const inHW = oneD ? [x.shape[2]] : [x.shape[1], x.shape[2]];
  const g = geometry(c, inHW, ks);
  const ceil = attrInt(c.node, 'ceil_mode', 0) === 1;
  const H = [x.shape[1], x.shape[2]];
  const out: [number, number] = [0, 0];
  const extra: [number, number] = [0, 0];
  for (let i = 0; i < 2; i++) {
    const K = (g.k[i] - 1) * g.d[i] + 1;
    const span = H[i] + g.pads[i] + g.pads[i + 2] - K;
    let o = (ceil ? Math.ceil(span / g.s[i]) : Math.floor(span / g.s[i])) + 1;
    if (ceil && (o - 1) * g.s[i] >= H[i] + g.pads[i]) o--;
    out[i] = o;
    extra[i] = Math.max(0, (o - 1) * g.s[i] + K - (H[i] + g.pads[i] + g.pads[i + 2]));
  }
  return { g, out, extra };
}

function padSpatial(x: tf.Tensor4D, g: Geo2, extra: [number, number], value: number): tf.Tensor4D {
  const p: Array<[number, number]> = [
    [0, 0],
    [g.pads[0], g.pads[2] + extra[0]],
    [g.pads[1], g.pads[3] + extra[1]],
    [0, 0],
  ];
  if (p.every(([a, b]) => a === 0 && b === 0)) return x;
  return tf.pad(x, p, value);
}

/** The window tap (i, j) for every output position of a padded input. */
function tap(xp: tf.Tensor4D, g: Geo2, out: [number, number], i: number, j: number): tf.Tensor4D {
  const [n, , , ch] = xp.shape;
  const b0 = i * g.d[0];
  const b1 = j * g.d[1];
  return tf.stridedSlice(
    xp,
    [0, b0, b1, 0],
    [n, b0 + (out[0] - 1) * g.s[0] + 1, b1 + (out[1] - 1) * g.s[1] + 1, ch],
    [1, g.s[0], g.s[1], 1],
  ) as tf.Tensor4D;
}

const maxPool: OpImpl = (c) => {
  const xv = inp(c, 0);
  const { x, oneD } = spatialInput(c, xv);
  const { g, out, extra } = poolGeometry(c, x, oneD);
  const xp = padSpatial(x, g, extra, -Infinity);
  let y: tf.Tensor4D;
  if (g.d[0] === 1 && g.d[1] === 1) y = tf.maxPool(xp, g.k, g.s, 'valid');
  else {
    y = tap(xp, g, out, 0, 0);
    for (let i = 0; i < g.k[0]; i++) for (let j = 0; j < g.k[1]; j++) if (i || j) y = tf.maximum(y, tap(xp, g, out, i, j));
  }
  const res = [spatialOutput(y, oneD, xv.dtype)];
  if (c.node.outputs[1]) {
    // ONNX Indices: flat index into the whole NCHW input; the first maximal tap wins
    const [n, H, W, ch] = x.shape;
    const base = tf.reshape(
      tf.add(tf.mul(tf.range(0, n, 1, 'int32'), int(ch * H * W)).reshape([n, 1]), tf.mul(tf.range(0, ch, 1, 'int32'), int(H * W)).reshape([1, ch])),
      [n, 1, 1, ch],
    );
    const rows = tf.mul(tf.range(0, out[0], 1, 'int32'), int(g.s[0]));
    const cols = tf.mul(tf.range(0, out[1], 1, 'int32'), int(g.s[1]));
    let idx: tf.Tensor | null = null;
    for (let i = g.k[0] - 1; i >= 0; i--)
      for (let j = g.k[1] - 1; j >= 0; j--) {
        const r = tf.add(rows, int(i * g.d[0] - g.pads[0])).reshape([1, out[0], 1, 1]);
        const cc = tf.add(cols, int(j * g.d[1] - g.pads[1])).reshape([1, 1, out[1], 1]);
        const here = tf.add(base, tf.add(tf.mul(r, int(W)), cc));
        const hit = tf.equal(tap(xp, g, out, i, j), y);
        idx = idx ? tf.where(hit, tf.broadcastTo(here, y.shape), idx) : tf.broadcastTo(here, y.shape);
      }
    res.push(spatialOutput(idx as tf.Tensor4D, oneD, 'int64'));
  }
  return res;
};

const averagePool: OpImpl = (c) => {
  const xv = inp(c, 0);
  const { x, oneD } = spatialInput(c, xv);
  const { g, extra } = poolGeometry(c, x, oneD);
  if (g.d[0] !== 1 || g.d[1] !== 1) fail(c, 'dilated AveragePool is not supported');
  const includePad = attrInt(c.node, 'count_include_pad', 0) === 1;
  const noPad = g.pads.every((p) => p === 0) && extra[0] === 0 && extra[1] === 0;
  if (noPad) return [spatialOutput(tf.avgPool(x, g.k, g.s, 'valid'), oneD)];
  const sum = tf.avgPool(padSpatial(x, g, extra, 0), g.k, g.s, 'valid');
  // the divisor: positions counted (real ones, plus explicit pads with count_include_pad)
  const [, H, W] = x.shape;
  const ones = tf.ones([1, H, W, 1]) as tf.Tensor4D;
  let mask: tf.Tensor4D;
  if (includePad) {
    const inner = padSpatial(ones, g, [0, 0], 1);
    mask = padSpatial(inner, { ...g, pads: [0, 0, 0, 0] }, extra, 0);
  } else mask = padSpatial(ones, g, extra, 0);
  const cnt = tf.avgPool(mask, g.k, g.s, 'valid');
  return [spatialOutput(tf.div(sum, cnt) as tf.Tensor4D, oneD)];
};

function globalPool(fn: (t: tf.Tensor, axes: number[]) => tf.Tensor): OpImpl {
  return (c) => {
    const v = inp(c, 0);
    if (v.nhwc) return [val(fn(v.t, [1, 2]), v.dtype, true)];
    const axes = [];
    for (let a = 2; a < v.t.rank; a++) axes.push(a);
    return [val(fn(v.t, axes), v.dtype)];
  };
}

/** Max, average and global pools. */
export const POOLING_OPS: Record<string, OpImpl> = {
  GlobalAveragePool: globalPool((t, a) => tf.mean(t, a, true)),
  GlobalMaxPool: globalPool((t, a) => tf.max(t, a, true)),
  MaxPool: maxPool,
  AveragePool: averagePool,
};
