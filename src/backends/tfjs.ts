// The tf.js backend: interprets a Graph (ONNX op semantics) with @tensorflow/tfjs ops.
// tfjs-node when installed, else the wasm backend (loaded offline from node_modules), else cpu.
//
// tf.js convolutions and pools are NHWC only, while the graph is NCHW. To avoid a transpose pair
// around every such op, a 4D value may be held "physically NHWC": `nhwc` is set and the tf.js
// tensor is the NHWC transpose of the logical NCHW tensor. Convs, pools, element-wise ops and
// channel-wise ops keep that form; everything else materialises the logical tensor.
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { Backend, CompiledGraph } from './backend';
import {
  type DType,
  type Graph,
  type Node,
  type Tensor,
  ModelError,
  attrInt,
  attrInts,
  attrString,
  describeNode,
  numel,
  toNumbers,
  topoSort,
} from '../engine/graph/graph';

interface Val {
  t: tf.Tensor;
  /** The ONNX dtype this value stands for (tf.js has no int64: int64 values live as int32). */
  dtype: DType;
  /** 4D only: `t` holds the NHWC transpose of the logical NCHW tensor. */
  nhwc: boolean;
  /** For initializers: the original tensor, read exactly for shapes, axes and bounds. */
  host?: Tensor;
}

interface Ctx {
  node: Node;
  graph: Graph;
  inputs: (Val | undefined)[];
  /** Cache of tensors derived from constants (e.g. transposed weights), kept across runs. */
  derive(key: string, make: () => tf.Tensor): tf.Tensor;
}

type OpImpl = (c: Ctx) => Val[];

const TO_NHWC = [0, 2, 3, 1];
const TO_NCHW = [0, 3, 1, 2];
/** logical NCHW axis -> physical NHWC axis */
const PHYS_AXIS = [0, 3, 1, 2];

function tfDtype(d: DType): 'float32' | 'int32' | 'bool' {
  if (d === 'bool') return 'bool';
  if (d === 'float32' || d === 'float64') return 'float32';
  return 'int32';
}

function fail(c: Ctx, why: string): never {
  throw new ModelError(`${describeNode(c.graph, c.node)}: ${why}`);
}

function val(t: tf.Tensor, dtype: DType, nhwc = false): Val {
  return { t, dtype, nhwc };
}

function logical(v: Val): tf.Tensor {
  return v.nhwc ? tf.transpose(v.t, TO_NCHW) : v.t;
}

/** The NHWC tensor of a logical 4D NCHW value. */
function physNhwc(v: Val): tf.Tensor4D {
  return (v.nhwc ? v.t : tf.transpose(v.t, TO_NHWC)) as tf.Tensor4D;
}

function dims(t: tf.Tensor): number[] {
  return t.shape as number[];
}

function shapeOf(v: Val): number[] {
  const s = dims(v.t);
  return v.nhwc ? [s[0], s[3], s[1], s[2]] : [...s];
}

function inp(c: Ctx, i: number): Val {
  const v = c.inputs[i];
  if (!v) fail(c, `input ${i} is missing`);
  return v;
}

function opt(c: Ctx, i: number): Val | undefined {
  return c.inputs[i];
}

/** Numbers of a (usually constant) input: exact for initializers, else read from the tensor. */
function nums(v: Val): number[] {
  if (v.host) return toNumbers(v.host);
  return Array.from(v.t.dataSync() as ArrayLike<number>, Number);
}

function normAxis(a: number, rank: number): number {
  return a < 0 ? a + rank : a;
}

const int = (n: number) => tf.scalar(n, 'int32');

/** Negative indices count from the end of an axis of size n. */
function wrapIndex(t: tf.Tensor, n: number): tf.Tensor {
  const i = tf.cast(t, 'int32');
  return tf.where(tf.less(i, int(0)), tf.add(i, int(n)), i);
}

function same(v: Val, t: tf.Tensor): Val {
  return val(t, v.dtype, v.nhwc);
}

// ---------- element-wise helpers ----------

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

// ---------- geometry ----------

interface Geo2 {
  k: [number, number];
  s: [number, number];
  d: [number, number];
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
}

function geometry(c: Ctx, inHW: number[], kernel: number[]): Geo2 {
  const n = c.node;
  const nd = kernel.length;
  const s = attrInts(n, 'strides', undefined) ?? new Array<number>(nd).fill(1);
  const d = attrInts(n, 'dilations', undefined) ?? new Array<number>(nd).fill(1);
  let pads = attrInts(n, 'pads', undefined) ?? new Array<number>(2 * nd).fill(0);
  const autoPad = attrString(n, 'auto_pad', 'NOTSET');
  if (autoPad === 'VALID') pads = new Array<number>(2 * nd).fill(0);
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = new Array<number>(2 * nd).fill(0);
    for (let i = 0; i < nd; i++) {
      const out = Math.ceil(inHW[i] / s[i]);
      const total = Math.max(0, (out - 1) * s[i] + (kernel[i] - 1) * d[i] + 1 - inHW[i]);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[i + nd] = total - pads[i];
    }
  }
  if (nd === 1) return { k: [1, kernel[0]], s: [1, s[0]], d: [1, d[0]], pads: [0, pads[0], 0, pads[1]] };
  if (nd !== 2) fail(c, `${nd}-D windows are not supported by the tfjs backend`);
  return { k: [kernel[0], kernel[1]], s: [s[0], s[1]], d: [d[0], d[1]], pads: [pads[0], pads[1], pads[2], pads[3]] };
}

/** Physical NHWC 4D view of an NCHW (or NCW) input; `squeeze1d` tells to drop H afterwards. */
function spatialInput(c: Ctx, v: Val): { x: tf.Tensor4D; oneD: boolean } {
  const r = v.t.rank;
  if (r === 4) return { x: physNhwc(v), oneD: false };
  if (r === 3) {
    const d = dims(v.t);
    const t = tf.reshape(v.t, [d[0], d[1], 1, d[2]]);
    return { x: tf.transpose(t, TO_NHWC) as tf.Tensor4D, oneD: true };
  }
  return fail(c, `expects a 3D or 4D input, got rank ${r}`);
}

function spatialOutput(y: tf.Tensor4D, oneD: boolean, dtype: DType = 'float32'): Val {
  if (!oneD) return val(y, dtype, true);
  const t = tf.transpose(y, TO_NCHW);
  return val(tf.reshape(t, [t.shape[0], t.shape[1], t.shape[3]]), dtype);
}

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

function constKey(c: Ctx, i: number): string | null {
  const v = c.inputs[i];
  return v?.host ? `${c.node.inputs[i]}` : null;
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

// ---------- pooling ----------

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

// ---------- shape ops ----------

function reshapeTo(c: Ctx, v: Val, target: number[], allowZero: boolean): Val {
  const inShape = shapeOf(v);
  const shape = target.map((d, i) => (d === 0 && !allowZero ? inShape[i] : d));
  if (shape.filter((d) => d === -1).length > 1) fail(c, 'more than one -1 in the target shape');
  return val(tf.reshape(logical(v), shape), v.dtype);
}

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

function castTo(t: tf.Tensor, to: DType): tf.Tensor {
  const target = tfDtype(to);
  if (t.dtype === target) return tf.clone(t);
  if (target === 'int32' && t.dtype === 'float32') return tf.cast(tf.sign(t).mul(tf.floor(tf.abs(t))), 'int32');
  return tf.cast(t, target);
}

const ONNX_TYPES: Record<number, DType> = { 1: 'float32', 2: 'uint8', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float32', 11: 'float64' };

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

function clipBound(c: Ctx, i: number, attr: string, dflt: number): number | tf.Tensor {
  const v = opt(c, i);
  if (!v) return c.node.attrs[attr] ? attrInt(c.node, attr, dflt) : dflt;
  if (v.host) return nums(v)[0];
  return v.t;
}

const sliceOp: OpImpl = (c) => {
  const v = inp(c, 0);
  let x = logical(v);
  const shape = x.shape;
  const rank = x.rank;
  const starts = nums(inp(c, 1));
  const ends = nums(inp(c, 2));
  const axesV = opt(c, 3);
  const stepsV = opt(c, 4);
  const axes = axesV ? nums(axesV).map((a) => normAxis(a, rank)) : starts.map((_, i) => i);
  const steps = stepsV ? nums(stepsV) : starts.map(() => 1);
  const begin = new Array<number>(rank).fill(0);
  const end = [...shape];
  const stride = new Array<number>(rank).fill(1);
  const reverse: number[] = [];
  axes.forEach((a, i) => {
    const dim = shape[a];
    const st = steps[i];
    if (st === 0) fail(c, 'a step of 0');
    const norm = (p: number) => (p < 0 ? p + dim : p);
    let s0: number;
    let cnt: number;
    if (st > 0) {
      s0 = Math.min(Math.max(norm(starts[i]), 0), dim);
      const e = Math.min(Math.max(norm(ends[i]), 0), dim);
      cnt = Math.max(0, Math.ceil((e - s0) / st));
    } else {
      s0 = Math.min(Math.max(norm(starts[i]), 0), dim - 1);
      const e = Math.min(Math.max(norm(ends[i]), -1), dim - 1);
      cnt = Math.max(0, Math.ceil((s0 - e) / -st));
      reverse.push(a);
      s0 = dim - 1 - s0;
    }
    const as = Math.abs(st);
    begin[a] = s0;
    end[a] = cnt > 0 ? s0 + (cnt - 1) * as + 1 : s0;
    stride[a] = as;
  });
  if (reverse.length) x = tf.reverse(x, reverse);
  if (end.some((e, i) => e - begin[i] <= 0)) {
    const outShape = end.map((e, i) => Math.max(0, Math.ceil((e - begin[i]) / stride[i])));
    return [val(tf.zeros(outShape, x.dtype), v.dtype)];
  }
  return [val(tf.stridedSlice(x, begin, end, stride), v.dtype)];
};

const padOp: OpImpl = (c) => {
  const v = inp(c, 0);
  const rank = v.t.rank;
  const padsV = opt(c, 1);
  const raw = padsV ? nums(padsV) : (attrInts(c.node, 'pads', undefined) ?? []);
  const axesV = opt(c, 3);
  const axes = axesV ? nums(axesV).map((a) => normAxis(a, rank)) : [...Array(rank).keys()];
  const before = new Array<number>(rank).fill(0);
  const after = new Array<number>(rank).fill(0);
  axes.forEach((a, i) => {
    before[a] = raw[i];
    after[a] = raw[i + axes.length];
  });
  const cv = opt(c, 2);
  const value = cv ? (nums(cv)[0] ?? 0) : c.node.attrs.value ? attrInt(c.node, 'value', 0) : 0;
  const mode = attrString(c.node, 'mode', 'constant');
  // work physically when the value is NHWC
  const map = (arr: number[]) => (v.nhwc ? [arr[0], arr[2], arr[3], arr[1]] : arr);
  const b = map(before);
  const e = map(after);
  let x = v.t;
  // negative pads crop
  if (b.some((p) => p < 0) || e.some((p) => p < 0)) {
    const start = b.map((p) => Math.max(0, -p));
    const size = x.shape.map((d, i) => d - start[i] - Math.max(0, -e[i]));
    x = tf.slice(x, start, size);
  }
  const p = b.map((q, i): [number, number] => [Math.max(0, q), Math.max(0, e[i])]);
  let y: tf.Tensor;
  if (mode === 'constant') y = tf.pad(x, p, value);
  else if (mode === 'reflect') y = tf.mirrorPad(x, p, 'reflect');
  else if (mode === 'edge') {
    y = x;
    p.forEach(([lo, hi], a) => {
      if (!lo && !hi) return;
      const n = y.shape[a];
      const parts: tf.Tensor[] = [];
      const edge = (at: number, times: number) => {
        const begin = new Array<number>(y.rank).fill(0);
        begin[at === 0 ? a : a] = at;
        const size = [...y.shape];
        size[a] = 1;
        const reps = new Array<number>(y.rank).fill(1);
        reps[a] = times;
        return tf.tile(tf.slice(y, begin, size), reps);
      };
      if (lo) parts.push(edge(0, lo));
      parts.push(y);
      if (hi) parts.push(edge(n - 1, hi));
      y = tf.concat(parts, a);
    });
  } else fail(c, `pad mode '${mode}' is not supported`);
  return [same(v, y)];
};

function broadcastShapes(a: number[], b: number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    out.push(x === 1 ? y : x);
  }
  return out;
}

const scatterElements: OpImpl = (c) => {
  const data = logical(inp(c, 0));
  const indices = logical(inp(c, 1));
  const updates = logical(inp(c, 2));
  const rank = data.rank;
  const axis = normAxis(attrInt(c.node, 'axis', 0), rank);
  const reduction = attrString(c.node, 'reduction', 'none');
  const idx = wrapIndex(indices, dims(data)[axis]);
  const full = tf.reshape(elementCoords(idx, axis, rank), [-1, rank]);
  const upd = tf.reshape(updates, [-1]);
  let y: tf.Tensor;
  if (reduction === 'add') y = tf.add(data, tf.scatterND(full, upd, data.shape));
  else if (reduction === 'none') y = tf.tensorScatterUpdate(data, full, upd);
  else return fail(c, `reduction '${reduction}' is not supported`);
  return [val(y, inp(c, 0).dtype)];
};

/** Coordinates [.., rank] for gatherND/scatterND: `idx` along `axis`, the element's own index elsewhere. */
function elementCoords(idx: tf.Tensor, axis: number, rank: number): tf.Tensor {
  const shape = idx.shape;
  const coords: tf.Tensor[] = [];
  for (let a = 0; a < rank; a++) {
    if (a === axis) coords.push(idx);
    else {
      const s = new Array<number>(rank).fill(1);
      s[a] = shape[a];
      coords.push(tf.broadcastTo(tf.reshape(tf.range(0, shape[a], 1, 'int32'), s), shape));
    }
  }
  return tf.stack(coords, rank);
}

const gatherElements: OpImpl = (c) => {
  const data = logical(inp(c, 0));
  const axis = normAxis(attrInt(c.node, 'axis', 0), data.rank);
  const idx = wrapIndex(logical(inp(c, 1)), dims(data)[axis]);
  return [val(tf.gatherND(data, elementCoords(idx, axis, data.rank)), inp(c, 0).dtype)];
};

const OPS: Record<string, OpImpl> = {
  GatherElements: gatherElements,
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
  Identity: (c) => [same(inp(c, 0), tf.clone(inp(c, 0).t))],
  Dropout: (c) => [same(inp(c, 0), tf.clone(inp(c, 0).t))],
  Cast: (c) => {
    const v = inp(c, 0);
    const to = ONNX_TYPES[attrInt(c.node, 'to', 1)];
    if (!to) fail(c, `cast to type ${attrInt(c.node, 'to', 1)} is not supported`);
    return [val(castTo(v.t, to), to, v.nhwc)];
  },
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
  OneHot: (c) => {
    const iv = inp(c, 0);
    const depth = nums(inp(c, 1))[0];
    const values = inp(c, 2);
    const [off, on] = nums(values);
    const idx = wrapIndex(logical(iv), depth);
    // (the wasm OneHot kernel writes int32 whatever dtype is asked: build a 0/1 mask, then scale)
    const mask = tf.oneHot(idx, depth, 1, 0, 'int32');
    const outType = tfDtype(values.dtype) === 'int32' ? 'int32' : 'float32';
    let y: tf.Tensor = tf.add(tf.mul(tf.cast(mask, outType), tf.scalar(on - off, outType)), tf.scalar(off, outType));
    const rank = y.rank;
    const axis = normAxis(attrInt(c.node, 'axis', -1), rank);
    if (axis !== rank - 1) {
      const perm = [...Array(rank - 1).keys()];
      perm.splice(axis, 0, rank - 1);
      y = tf.transpose(y, perm);
    }
    return [val(y, values.dtype)];
  },
  Reshape: (c) => [reshapeTo(c, inp(c, 0), nums(inp(c, 1)), attrInt(c.node, 'allowzero', 0) === 1)],
  Flatten: (c) => {
    const v = inp(c, 0);
    const s = shapeOf(v);
    const axis = normAxis(attrInt(c.node, 'axis', 1), s.length);
    return [val(tf.reshape(logical(v), [numel(s.slice(0, axis)), numel(s.slice(axis))]), v.dtype)];
  },
  Squeeze: (c) => {
    const v = inp(c, 0);
    const s = shapeOf(v);
    const av = opt(c, 1);
    const raw = av ? nums(av) : attrInts(c.node, 'axes', undefined);
    const axes = raw ? raw.map((a) => normAxis(a, s.length)) : s.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
    return [val(tf.reshape(logical(v), s.filter((_, i) => !axes.includes(i))), v.dtype)];
  },
  Unsqueeze: (c) => {
    const v = inp(c, 0);
    const s = shapeOf(v);
    const av = opt(c, 1);
    const raw = av ? nums(av) : (attrInts(c.node, 'axes', undefined) ?? []);
    const r = s.length + raw.length;
    const axes = raw.map((a) => normAxis(a, r));
    const out: number[] = [];
    let k = 0;
    for (let i = 0; i < r; i++) out.push(axes.includes(i) ? 1 : s[k++]);
    return [val(tf.reshape(logical(v), out), v.dtype)];
  },
  Transpose: (c) => {
    const v = inp(c, 0);
    const rank = v.t.rank;
    const perm = attrInts(c.node, 'perm', undefined) ?? [...Array(rank).keys()].reverse();
    // NHWC <-> NCHW without moving data when the physical form already is the wanted one
    if (rank === 4 && v.nhwc && perm.join() === TO_NHWC.join()) return [val(tf.clone(v.t), v.dtype)];
    if (rank === 4 && !v.nhwc && perm.join() === TO_NCHW.join()) return [val(tf.clone(v.t), v.dtype, true)];
    return [val(tf.transpose(logical(v), perm), v.dtype)];
  },
  Concat: (c) => {
    const vs = c.inputs.filter((v): v is Val => !!v);
    const rank = vs[0].t.rank;
    const axis = normAxis(attrInt(c.node, 'axis', 0), rank);
    if (rank === 4 && vs.every((v) => v.nhwc)) return [val(tf.concat(vs.map((v) => v.t), PHYS_AXIS[axis]), vs[0].dtype, true)];
    return [val(tf.concat(vs.map(logical), axis), vs[0].dtype)];
  },
  Split: (c) => {
    const v = inp(c, 0);
    const x = logical(v);
    const axis = normAxis(attrInt(c.node, 'axis', 0), x.rank);
    const sv = opt(c, 1);
    const sizes = sv ? nums(sv) : attrInts(c.node, 'split', undefined);
    const n = c.node.outputs.length;
    let parts: tf.Tensor[];
    if (sizes) parts = tf.split(x, sizes, axis);
    else {
      const dim = x.shape[axis];
      const chunk = Math.ceil(dim / n);
      const s = new Array<number>(n).fill(chunk);
      s[n - 1] = dim - chunk * (n - 1);
      parts = tf.split(x, s, axis);
    }
    return parts.map((p) => val(p, v.dtype));
  },
  Slice: sliceOp,
  Pad: padOp,
  Expand: (c) => {
    const v = inp(c, 0);
    const shape = broadcastShapes(shapeOf(v), nums(inp(c, 1)));
    return [val(tf.broadcastTo(logical(v), shape), v.dtype)];
  },
  Tile: (c) => {
    const v = inp(c, 0);
    return [val(tf.tile(logical(v), nums(inp(c, 1))), v.dtype)];
  },
  Shape: (c) => {
    const s = shapeOf(inp(c, 0));
    const start = normAxis(attrInt(c.node, 'start', 0), s.length);
    const endA = c.node.attrs.end ? normAxis(attrInt(c.node, 'end', s.length), s.length) : s.length;
    return [val(tf.tensor1d(s.slice(start, endA), 'int32'), 'int64')];
  },
  Gather: (c) => {
    const v = inp(c, 0);
    const x = logical(v);
    const axis = normAxis(attrInt(c.node, 'axis', 0), x.rank);
    const idx = wrapIndex(logical(inp(c, 1)), dims(x)[axis]);
    return [val(tf.gather(x, idx, axis), v.dtype)];
  },
  Constant: (c) => {
    const a = c.node.attrs.value;
    if (!a || a.type !== 'tensor') return fail(c, 'only tensor-valued Constant nodes are supported');
    return [hostVal(a.value)];
  },
  ConstantOfShape: (c) => {
    const shape = nums(inp(c, 0));
    const a = c.node.attrs.value;
    const fill = a && a.type === 'tensor' ? Number(a.value.data[0]) : 0;
    const dtype: DType = a && a.type === 'tensor' ? a.value.dtype : 'float32';
    return [val(tf.fill(shape, fill, tfDtype(dtype)), dtype)];
  },
  GlobalAveragePool: globalPool((t, a) => tf.mean(t, a, true)),
  GlobalMaxPool: globalPool((t, a) => tf.max(t, a, true)),
  MaxPool: maxPool,
  AveragePool: averagePool,
  ScatterElements: scatterElements,
};

/** The ONNX op types the tfjs backend can run. */
export const TFJS_OPS: readonly string[] = Object.keys(OPS);

/** An initializer: uploaded on first use, droppable when only derived forms are needed. */
class ConstVal implements Val {
  readonly nhwc = false;
  readonly dtype: DType;
  private tensor: tf.Tensor | null = null;
  constructor(readonly host: Tensor) {
    this.dtype = host.dtype;
  }
  get t(): tf.Tensor {
    this.tensor ??= tf.keep(hostVal(this.host).t);
    return this.tensor;
  }
  drop(): void {
    this.tensor?.dispose();
    this.tensor = null;
  }
}

/** Inputs that ops only read through `derive` (weights re-laid out once and cached). */
const DERIVED_INPUTS: Record<string, number[]> = { Conv: [1], ConvTranspose: [1], BatchNormalization: [1, 2, 3, 4] };

function hostVal(t: Tensor): Val {
  const d = tfDtype(t.dtype);
  let data: Float32Array | Int32Array | Uint8Array;
  if (d === 'float32') data = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>, Number);
  else if (d === 'int32') {
    data = new Int32Array(t.data.length);
    for (let i = 0; i < data.length; i++) data[i] = Math.max(-2147483648, Math.min(2147483647, Number(t.data[i])));
  } else data = Uint8Array.from(t.data as ArrayLike<number>, (x) => (Number(x) ? 1 : 0));
  return { t: tf.tensor(data, t.dims, d), dtype: t.dtype, nhwc: false, host: t };
}

function toHost(v: Val): Tensor {
  const t = logical(v);
  const dims = [...t.shape];
  const raw = t.dataSync();
  if (t !== v.t) t.dispose();
  const n = raw.length;
  switch (v.dtype) {
    case 'float32':
      return { dtype: 'float32', dims, data: raw instanceof Float32Array ? raw.slice() : Float32Array.from(raw as ArrayLike<number>) };
    case 'float64':
      return { dtype: 'float64', dims, data: Float64Array.from(raw as ArrayLike<number>) };
    case 'int64': {
      const o = new BigInt64Array(n);
      for (let i = 0; i < n; i++) o[i] = BigInt(Math.trunc(Number(raw[i])));
      return { dtype: 'int64', dims, data: o };
    }
    case 'int32':
      return { dtype: 'int32', dims, data: Int32Array.from(raw as ArrayLike<number>) };
    default:
      return { dtype: v.dtype, dims, data: Uint8Array.from(raw as ArrayLike<number>, (x) => (Number(x) ? 1 : 0)) };
  }
}

class TfjsCompiled implements CompiledGraph {
  private readonly order: Node[];
  private readonly consts = new Map<string, ConstVal>();
  /** initializers whose every use goes through `derive`: their raw upload is dropped after use */
  private readonly deriveOnly = new Set<string>();
  private readonly derived = new Map<string, tf.Tensor>();
  private readonly lastUse = new Map<string, number>();
  private disposed = false;

  constructor(private readonly graph: Graph) {
    this.order = topoSort(graph);
    const missing = this.order.filter((n) => !OPS[n.opType]);
    if (missing.length) {
      const n = missing[0];
      throw new ModelError(`${describeNode(graph, n)}: op type ${n.opType} is not supported by the tfjs backend`);
    }
    for (const [name, t] of graph.initializers) {
      this.consts.set(name, new ConstVal(t));
      this.deriveOnly.add(name);
    }
    this.order.forEach((n, i) =>
      n.inputs.forEach((x, k) => {
        if (!x) return;
        this.lastUse.set(x, i);
        if (!DERIVED_INPUTS[n.opType]?.includes(k)) this.deriveOnly.delete(x);
      }),
    );
    for (const o of graph.outputs) this.deriveOnly.delete(o.name);
    for (const o of graph.outputs) this.lastUse.set(o.name, Infinity);
  }

  async run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    if (this.disposed) throw new Error('tfjs backend: graph already disposed');
    const g = this.graph;
    const env = new Map<string, Val>(this.consts);
    const owned = new Set<string>();
    const release = (name: string) => {
      if (owned.has(name)) {
        env.get(name)?.t.dispose();
        owned.delete(name);
      }
    };
    try {
      for (const inputInfo of g.inputs) {
        const f = feeds[inputInfo.name];
        if (!f) {
          if (this.consts.has(inputInfo.name)) continue;
          throw new ModelError(`${g.source}: no value fed for input '${inputInfo.name}'`);
        }
        const v = hostVal(f);
        delete v.host;
        env.set(inputInfo.name, v);
        owned.add(inputInfo.name);
      }
      this.order.forEach((node, i) => {
        const ctx: Ctx = {
          node,
          graph: g,
          inputs: node.inputs.map((x) => (x ? env.get(x) : undefined)),
          derive: (key, make) => {
            let t = this.derived.get(key);
            if (!t) {
              t = tf.keep(make());
              this.derived.set(key, t);
            }
            return t;
          },
        };
        let outs: Val[] = [];
        const tensors = tf.tidy(() => {
          try {
            outs = OPS[node.opType](ctx);
          } catch (e) {
            if (e instanceof ModelError) throw e;
            throw new ModelError(`${describeNode(g, node)}: ${(e as Error).message}`);
          }
          return outs.map((o) => o.t);
        });
        const ins = new Set(ctx.inputs.map((v) => v?.t));
        outs.forEach((o, k) => {
          o.t = ins.has(tensors[k]) ? tf.clone(tensors[k]) : tensors[k];
          const name = node.outputs[k];
          if (!name) {
            o.t.dispose();
            return;
          }
          env.set(name, o);
          owned.add(name);
        });
        for (const x of node.inputs)
          if (x && this.lastUse.get(x) === i) {
            release(x);
            if (this.deriveOnly.has(x)) this.consts.get(x)?.drop();
          }
        node.outputs.forEach((name, k) => {
          if (name && !this.lastUse.has(name) && outs[k]) release(name);
        });
      });
      const result: Record<string, Tensor> = {};
      for (const o of g.outputs) {
        const v = env.get(o.name);
        if (!v) throw new ModelError(`${g.source}: graph output '${o.name}' was not computed`);
        result[o.name] = toHost(v);
      }
      return result;
    } finally {
      for (const name of [...owned]) release(name);
    }
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.consts.values()) v.drop();
    for (const t of this.derived.values()) t.dispose();
    this.consts.clear();
    this.derived.clear();
  }
}

let ready: Promise<string> | null = null;

async function initTf(): Promise<string> {
  tf.env().set('PROD', true);
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@tensorflow/tfjs-node');
    if (await tf.setBackend('tensorflow')) {
      await tf.ready();
      return 'tfjs-node';
    }
  } catch {
    // optional dependency not installed: fall back
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
    const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
    wasm.setWasmPaths(dir + path.sep);
    if (await tf.setBackend('wasm')) {
      await tf.ready();
      return 'wasm';
    }
  } catch {
    // fall back to the plain CPU backend
  }
  await tf.setBackend('cpu');
  await tf.ready();
  return 'cpu';
}

/** The tf.js backend (tfjs-node, else wasm, else cpu). */
export async function createTfjsBackend(): Promise<Backend> {
  ready ??= initTf();
  const kind = await ready;
  return {
    name: 'tfjs',
    detail: `tfjs ${tf.version.tfjs} (${kind})`,
    // every program holds its own re-laid-out weights; wasm memory is small (InceptionV3 ran out at 4)
    programCacheSize: kind === 'wasm' ? 1 : 2,
    compile: async (graph: Graph) => new TfjsCompiled(graph),
  };
}
