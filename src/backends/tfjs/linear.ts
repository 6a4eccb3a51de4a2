// Linear ops: convolutions (grouped, depthwise, dilated, transposed) on NHWC values, with the
// re-laid-out weights of constant kernels cached through `derive`, and matrix products.
import * as tf from '@tensorflow/tfjs';
import { attrInt, attrInts, attrString } from '../../engine/graph/graph';
import { type Ctx, type OpImpl, constKey, dims, fail, inp, logical, opt, val } from './value';
import { type Geo2, geometry, spatialInput, spatialOutput } from './window';

function explicit(p: Geo2['pads']): [[number, number], [number, number], [number, number], [number, number]] {
  return [
    [0, 0],
    [p[0], p[2]],
    [p[1], p[3]],
    [0, 0],
  ];
}

/** Insert (d-1) zeros between kernel taps along the two leading (spatial) axes of [kh,kw,a,b]. */
function dilateKernel(f: tf.Tensor4D, d: [number, number]): tf.Tensor4D {
  if (d[0] === 1 && d[1] === 1) return f;
  const [kh, kw, a, b] = f.shape;
  let t = tf.reshape(f, [kh, 1, kw, 1, a, b]);
  t = tf.pad(t, [
    [0, 0],
    [0, d[0] - 1],
    [0, 0],
    [0, d[1] - 1],
    [0, 0],
    [0, 0],
  ]);
  t = tf.reshape(t, [kh * d[0], kw * d[1], a, b]);
  return tf.slice(t, [0, 0, 0, 0], [(kh - 1) * d[0] + 1, (kw - 1) * d[1] + 1, a, b]) as tf.Tensor4D;
}

/** Grouped 2D convolution in NHWC with an ONNX OIHW weight (already as a tf tensor). */
function conv2dNhwc(c: Ctx, x: tf.Tensor4D, w: tf.Tensor4D, wKey: string | null, group: number, g: Geo2): tf.Tensor4D {
  const cin = x.shape[3];
  const [cout, cinG] = w.shape;
  if (cinG * group !== cin) fail(c, `weight expects ${cinG * group} input channels, input has ${cin}`);
  const key = (kind: string) => (wKey ? `${wKey}|${kind}` : null);
  const keep = (k: string | null, make: () => tf.Tensor4D): tf.Tensor4D => (k ? (c.derive(k, make) as tf.Tensor4D) : make());
  const stridedDilated = (g.s[0] > 1 || g.s[1] > 1) && (g.d[0] > 1 || g.d[1] > 1);
  const strides: [number, number] = stridedDilated ? [1, 1] : g.s;
  const pad = explicit(g.pads);
  let y: tf.Tensor4D;
  if (group === 1) {
    const f = keep(key('hwio'), () => tf.transpose(w, [2, 3, 1, 0]));
    y = tf.conv2d(x, f, strides, pad, 'NHWC', g.d);
  } else if (cinG === 1 && cout % cin === 0) {
    const m = cout / cin;
    const f = keep(key('dw'), () => tf.transpose(tf.reshape(w, [cin, m, w.shape[2], w.shape[3]]), [2, 3, 0, 1]));
    y = tf.depthwiseConv2d(x, f, strides, pad, 'NHWC', g.d);
  } else {
    const coutG = cout / group;
    const xs = tf.split(x, group, 3);
    const ys = xs.map((xg, i) => {
      const f = keep(key(`g${i}`), () =>
        tf.transpose(tf.slice(w, [i * coutG, 0, 0, 0], [coutG, cinG, w.shape[2], w.shape[3]]), [2, 3, 1, 0]),
      );
      return tf.conv2d(xg as tf.Tensor4D, f, strides, pad, 'NHWC', g.d);
    });
    y = tf.concat(ys, 3);
  }
  if (stridedDilated) {
    const [n, h, wd, ch] = y.shape;
    const oh = Math.floor((h - 1) / g.s[0]) + 1;
    const ow = Math.floor((wd - 1) / g.s[1]) + 1;
    y = tf.stridedSlice(y, [0, 0, 0, 0], [n, (oh - 1) * g.s[0] + 1, (ow - 1) * g.s[1] + 1, ch], [1, g.s[0], g.s[1], 1]) as tf.Tensor4D;
  }
  return y;
}

const conv: OpImpl = (c) => {
  const xv = inp(c, 0);
  const wv = inp(c, 1);
  const { x, oneD } = spatialInput(c, xv);
  let w = logical(wv);
  if (w.rank === 3) w = tf.reshape(w, [dims(w)[0], dims(w)[1], 1, dims(w)[2]]);
  const kernel = wv.t.rank === 3 ? [dims(w)[3]] : [dims(w)[2], dims(w)[3]];
  const inHW = oneD ? [x.shape[2]] : [x.shape[1], x.shape[2]];
  const g = geometry(c, inHW, kernel);
  let y = conv2dNhwc(c, x, w as tf.Tensor4D, constKey(c, 1), attrInt(c.node, 'group', 1), g);
  const b = opt(c, 2);
  if (b) y = tf.add(y, logical(b));
  return [spatialOutput(y, oneD)];
};

const convTranspose: OpImpl = (c) => {
  const xv = inp(c, 0);
  const wv = inp(c, 1);
  const { x, oneD } = spatialInput(c, xv);
  let w = logical(wv);
  if (w.rank === 3) w = tf.reshape(w, [dims(w)[0], dims(w)[1], 1, dims(w)[2]]);
  const w4 = w as tf.Tensor4D;
  const n = c.node;
  const nd = oneD ? 1 : 2;
  const lift = (a: number[] | undefined, dflt: number, len = nd): number[] => {
    const v = a ?? new Array<number>(len).fill(dflt);
    return oneD ? (len === 1 ? [dflt, v[0]] : [0, v[0], 0, v[1]]) : v;
  };
  const s = lift(attrInts(n, 'strides', undefined), 1);
  const d = lift(attrInts(n, 'dilations', undefined), 1);
  const op = lift(attrInts(n, 'output_padding', undefined), 0);
  const group = attrInt(n, 'group', 1);
  const [cin, coutG, kh, kw] = w4.shape;
  const cout = coutG * group;
  if (cin !== x.shape[3]) fail(c, `weight expects ${cin} input channels, input has ${x.shape[3]}`);
  const K = [(kh - 1) * d[0] + 1, (kw - 1) * d[1] + 1];
  const inHW = [x.shape[1], x.shape[2]];
  let pads = lift(attrInts(n, 'pads', undefined), 0, 2 * nd);
  const outShapeAttr = attrInts(n, 'output_shape', undefined);
  const autoPad = attrString(n, 'auto_pad', 'NOTSET');
  if (outShapeAttr || autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const target = outShapeAttr ? lift(outShapeAttr, 1) : inHW.map((v, i) => v * s[i]);
    pads = [0, 0, 0, 0];
    for (let i = 0; i < 2; i++) {
      const total = Math.max(0, s[i] * (inHW[i] - 1) + op[i] + K[i] - target[i]);
      const half = Math.floor(total / 2);
      const begin = autoPad === 'SAME_UPPER' ? half : total - half;
      pads[i] = begin;
      pads[i + 2] = total - begin;
    }
  } else if (autoPad === 'VALID') pads = [0, 0, 0, 0];
  const full = [(inHW[0] - 1) * s[0] + K[0], (inHW[1] - 1) * s[1] + K[1]];
  const wKey = constKey(c, 1);
  let y: tf.Tensor4D;
  if (group === 1) {
    const f = wKey
      ? (c.derive(`${wKey}|tconv|${d}`, () => dilateKernel(tf.transpose(w4, [2, 3, 1, 0]), [d[0], d[1]])) as tf.Tensor4D)
      : dilateKernel(tf.transpose(w4, [2, 3, 1, 0]), [d[0], d[1]]);
    y = tf.conv2dTranspose(x, f, [x.shape[0], full[0], full[1], cout], [s[0], s[1]], 'valid');
  } else {
    // zero-stuff the input, then an ordinary grouped conv with the flipped, regrouped kernel
    let xs: tf.Tensor4D = x;
    if (s[0] > 1 || s[1] > 1) {
      const [nb, h, wd, ch] = x.shape;
      let t = tf.reshape(x, [nb, h, 1, wd, 1, ch]);
      t = tf.pad(t, [
        [0, 0],
        [0, 0],
        [0, s[0] - 1],
        [0, 0],
        [0, s[1] - 1],
        [0, 0],
      ]);
      t = tf.reshape(t, [nb, h * s[0], wd * s[1], ch]);
      xs = tf.slice(t, [0, 0, 0, 0], [nb, (h - 1) * s[0] + 1, (wd - 1) * s[1] + 1, ch]) as tf.Tensor4D;
    }
    const cinG = cin / group;
    const makeW = () => {
      // [g, cinG, coutG, kh, kw] -> [g, coutG, cinG, kh, kw], flipped spatially
      const t = tf.reshape(w4, [group, cinG, coutG, kh, kw]);
      const r = tf.reverse(tf.transpose(t, [0, 2, 1, 3, 4]), [3, 4]);
      return tf.reshape(r, [cout, cinG, kh, kw]) as tf.Tensor4D;
    };
    const wf = wKey ? (c.derive(`${wKey}|tconvg`, makeW) as tf.Tensor4D) : makeW();
    const g: Geo2 = { k: [kh, kw], s: [1, 1], d: [d[0], d[1]], pads: [K[0] - 1, K[1] - 1, K[0] - 1, K[1] - 1] };
    y = conv2dNhwc(c, xs, wf, wKey ? `${wKey}|tconvg` : null, group, g);
  }
  // y is the full transposed output: add output_padding at the end, crop the pads
  const outH = full[0] + op[0] - pads[0] - pads[2];
  const outW = full[1] + op[1] - pads[1] - pads[3];
  if (op[0] > 0 || op[1] > 0)
    y = tf.pad(y, [
      [0, 0],
      [0, op[0]],
      [0, op[1]],
      [0, 0],
    ]);
  y = tf.slice(y, [0, pads[0], pads[1], 0], [y.shape[0], outH, outW, cout]);
  const b = opt(c, 2);
  if (b) y = tf.add(y, logical(b));
  return [spatialOutput(y, oneD)];
};

/** Conv, ConvTranspose, Gemm and MatMul. */
export const LINEAR_OPS: Record<string, OpImpl> = {
  Conv: conv,
  ConvTranspose: convTranspose,
  Gemm: (c) => {
    const a = logical(inp(c, 0));
    const b = logical(inp(c, 1));
    const n = c.node;
    let y = tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, attrInt(n, 'transA', 0) === 1, attrInt(n, 'transB', 0) === 1);
    const alpha = attrInt(n, 'alpha', 1);
    if (alpha !== 1) y = tf.mul(y, alpha);
    const cv = opt(c, 2);
    if (cv) {
      const beta = attrInt(n, 'beta', 1);
      const ct = logical(cv);
      y = tf.add(y, beta === 1 ? ct : tf.mul(ct, beta));
    }
    return [val(y, 'float32')];
  },
  MatMul: (c) => {
    let a = logical(inp(c, 0));
    let b = logical(inp(c, 1));
    const a1 = a.rank === 1;
    const b1 = b.rank === 1;
    if (a1) a = tf.reshape(a, [1, a.shape[0]]);
    if (b1) b = tf.reshape(b, [b.shape[0], 1]);
    let y = tf.matMul(a, b);
    if (a1 || b1) {
      const s = [...y.shape];
      if (b1) s.splice(s.length - 1, 1);
      if (a1) s.splice(s.length - (b1 ? 1 : 2), 1);
      y = tf.reshape(y, s);
    }
    return [val(y, 'float32')];
  },
};
