// Canonisation passes (spec section 3), run before rules are assigned. Each pass is a small
// function over the graph; they run in a fixed order.
import {
  A,
  Graph,
  Node,
  Tensor,
  asFloat32,
  attrInt,
  attrInts,
  consumers,
  f32,
  producers,
  pruneDead,
  renameUses,
  toNumbers,
} from './graph';
import { foldConstants } from './fold';
import { foldMatMulBias, fuseGelu, fuseLayerNorm } from './fuse';

type Pass = (g: Graph) => void;

function soleConsumer(g: Graph, t: string): Node | null {
  if (g.outputs.some((o) => o.name === t)) return null;
  const c = consumers(g).get(t) ?? [];
  return c.length === 1 ? c[0] : null;
}

/** Identity and Dropout (inference) are no-ops. */
const removeNoOps: Pass = (g) => {
  for (const n of [...g.nodes]) {
    if (n.opType !== 'Identity' && n.opType !== 'Dropout') continue;
    if (n.outputs[1] && (consumers(g).get(n.outputs[1]) ?? []).length) continue; // dropout mask in use
    g.nodes = g.nodes.filter((m) => m !== n);
    const src = n.inputs[0];
    if (g.outputs.some((o) => o.name === n.outputs[0]) && g.initializers.has(src)) continue;
    renameUses(g, n.outputs[0], src);
  }
};

/**
 * A final Softmax/LogSoftmax is removed: explanations start from the logits. It may sit behind
 * shape-only nodes (old exporters wrap a softmax over a non-last axis in Flatten ... Reshape).
 */
const SHAPE_ONLY = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity']);
const removeFinalSoftmax: Pass = (g) => {
  for (const out of g.outputs) {
    for (;;) {
      const prod = producers(g);
      const cons = consumers(g);
      let t = out.name;
      let p = prod.get(t);
      while (p && SHAPE_ONLY.has(p.opType) && (cons.get(p.inputs[0]) ?? []).length === 1) {
        t = p.inputs[0];
        p = prod.get(t);
      }
      if (!p || (p.opType !== 'Softmax' && p.opType !== 'LogSoftmax')) break;
      if ((cons.get(t) ?? []).length > (t === out.name ? 0 : 1)) break; // the probabilities feed something else
      const softmax = p;
      g.nodes = g.nodes.filter((m) => m !== softmax);
      renameUses(g, softmax.outputs[0], softmax.inputs[0]);
    }
  }
};

/** Per-output-channel view of a linear node's weight and bias, for folding. */
interface LinearParams {
  channels: number;
  scaleOutputs(scale: Float32Array, shift: Float32Array): void;
}

function linearParams(g: Graph, n: Node): LinearParams | null {
  const w = g.initializers.get(n.inputs[1]);
  if (!w) return null;
  const biasName = n.inputs[2];
  const bias = biasName ? g.initializers.get(biasName) : undefined;
  if (biasName && !bias) return null;
  let channels: number;
  let outerOf: (i: number) => number; // weight element index -> output channel
  if (n.opType === 'Conv') {
    channels = w.dims[0];
    const per = w.data.length / channels;
    outerOf = (i) => Math.floor(i / per);
  } else if (n.opType === 'Gemm') {
    if (attrInt(n, 'transA', 0) !== 0) return null;
    const transB = attrInt(n, 'transB', 0) === 1;
    channels = transB ? w.dims[0] : w.dims[1];
    const cols = w.dims[1];
    outerOf = transB ? (i) => Math.floor(i / cols) : (i) => i % cols;
    if (bias && bias.data.length !== channels) return null;
  } else return null;
  return {
    channels,
    scaleOutputs(scale, shift) {
      const wd = asFloat32(w);
      const nw = new Float32Array(wd.length);
      for (let i = 0; i < wd.length; i++) nw[i] = wd[i] * scale[outerOf(i)];
      const bd = bias ? asFloat32(bias) : new Float32Array(channels);
      const beta = n.opType === 'Gemm' ? attrInt(n, 'beta', 1) : 1;
      const nb = new Float32Array(channels);
      for (let c = 0; c < channels; c++) nb[c] = beta * bd[c] * scale[c] + shift[c];
      if (n.opType === 'Gemm') n.attrs.beta = A.float(1);
      const wName = `${n.inputs[1]}__folded_${n.name}`;
      const bName = `${n.name}__folded_bias`;
      g.initializers.set(wName, { dtype: 'float32', dims: [...w.dims], data: nw });
      g.initializers.set(bName, f32([channels], nb));
      n.inputs[1] = wName;
      n.inputs[2] = bName;
    },
  };
}

/** Values of a constant broadcast per output channel (shape [C], [1,C], [1,C,1,1], or scalar). */
function perChannel(t: Tensor, channels: number, rankOut: number): Float32Array | null {
  const v = asFloat32(t);
  if (v.length === 1) return new Float32Array(channels).fill(v[0]);
  if (v.length !== channels) return null;
  const dims = t.dims;
  const padded = [...new Array<number>(Math.max(0, rankOut - dims.length)).fill(1), ...dims];
  const ok = padded.every((d, i) => (i === 1 ? d === channels : d === 1));
  return ok ? v : null;
}

/** BatchNormalization directly after a Conv/Gemm whose output has no other consumer. */
const foldBatchNorm: Pass = (g) => {
  for (const bn of [...g.nodes]) {
    if (bn.opType !== 'BatchNormalization') continue;
    const prod = producers(g).get(bn.inputs[0]);
    if (!prod || (prod.opType !== 'Conv' && prod.opType !== 'Gemm')) continue;
    if (soleConsumer(g, prod.outputs[0]) !== bn) continue;
    const [gamma, beta, mean, variance] = bn.inputs.slice(1, 5).map((i) => g.initializers.get(i));
    if (!gamma || !beta || !mean || !variance) continue;
    const lp = linearParams(g, prod);
    if (!lp || gamma.data.length !== lp.channels) continue;
    const eps = attrInt(bn, 'epsilon', 1e-5);
    const gd = asFloat32(gamma);
    const bd = asFloat32(beta);
    const md = asFloat32(mean);
    const vd = asFloat32(variance);
    const scale = new Float32Array(lp.channels);
    const shift = new Float32Array(lp.channels);
    for (let c = 0; c < lp.channels; c++) {
      // computed in float64 before rounding, as the spec's formula
      const s = gd[c] / Math.sqrt(vd[c] + eps);
      scale[c] = s;
      shift[c] = bd[c] - md[c] * s;
    }
    lp.scaleOutputs(scale, shift);
    g.nodes = g.nodes.filter((m) => m !== bn);
    renameUses(g, bn.outputs[0], prod.outputs[0]);
  }
};

/** MatMul(x, W) with a constant 2-D W and a 2-D input becomes Gemm (so an Add after it folds). */
const matmulToGemm = (shapes: (t: string) => number[] | undefined): Pass => (g) => {
  for (const n of g.nodes) {
    if (n.opType !== 'MatMul') continue;
    const w = g.initializers.get(n.inputs[1]);
    const xd = shapes(n.inputs[0]);
    if (!w || w.dims.length !== 2 || !xd || xd.length !== 2) continue;
    n.opType = 'Gemm';
    n.attrs = {};
  }
};

/** Add/Sub/Mul/Div by a per-channel constant right after a Conv/Gemm: folded into it. */
const foldAffineConstants: Pass = (g) => {
  for (const n of [...g.nodes]) {
    if (!['Add', 'Sub', 'Mul', 'Div'].includes(n.opType)) continue;
    const constIdx = n.inputs.findIndex((i) => g.initializers.has(i));
    if (constIdx < 0 || n.inputs.length !== 2) continue;
    if ((n.opType === 'Sub' || n.opType === 'Div') && constIdx !== 1) continue;
    const act = n.inputs[1 - constIdx];
    const prod = producers(g).get(act);
    if (!prod || (prod.opType !== 'Conv' && prod.opType !== 'Gemm')) continue;
    if (soleConsumer(g, prod.outputs[0]) !== n) continue;
    const lp = linearParams(g, prod);
    if (!lp) continue;
    const rankOut = prod.opType === 'Conv' ? 4 : 2;
    const c = perChannel(g.initializers.get(n.inputs[constIdx]) as Tensor, lp.channels, rankOut);
    if (!c) continue;
    const scale = new Float32Array(lp.channels).fill(1);
    const shift = new Float32Array(lp.channels);
    for (let k = 0; k < lp.channels; k++) {
      if (n.opType === 'Add') shift[k] = c[k];
      else if (n.opType === 'Sub') shift[k] = -c[k];
      else if (n.opType === 'Mul') scale[k] = c[k];
      else scale[k] = 1 / c[k];
    }
    lp.scaleOutputs(scale, shift);
    g.nodes = g.nodes.filter((m) => m !== n);
    renameUses(g, n.outputs[0], prod.outputs[0]);
  }
};

/** An all-zero constant Pad feeding only an AveragePool becomes the pool's own padding. */
const foldPadIntoAveragePool: Pass = (g) => {
  for (const pad of [...g.nodes]) {
    if (pad.opType !== 'Pad') continue;
    const pool = soleConsumer(g, pad.outputs[0]);
    if (!pool || pool.opType !== 'AveragePool') continue;
    const mode = pad.attrs.mode?.type === 'string' ? pad.attrs.mode.value : 'constant';
    if (mode !== 'constant' || pad.inputs[3]) continue;
    const padsT = g.initializers.get(pad.inputs[1]);
    if (!padsT) continue;
    const value = pad.inputs[2] ? g.initializers.get(pad.inputs[2]) : undefined;
    if (pad.inputs[2] && (!value || Number(value.data[0]) !== 0)) continue;
    const p = toNumbers(padsT);
    const rank = p.length / 2;
    if (rank !== 4 || p[0] || p[1] || p[4] || p[5] || p.some((v) => v < 0)) continue;
    const own = attrInts(pool, 'pads', undefined) ?? [0, 0, 0, 0];
    const autoPad = pool.attrs.auto_pad?.type === 'string' ? pool.attrs.auto_pad.value : 'NOTSET';
    if (autoPad !== 'NOTSET') continue;
    if (own.some((v) => v) && attrInt(pool, 'count_include_pad', 0) !== 1) continue;
    pool.attrs.pads = A.ints([own[0] + p[2], own[1] + p[3], own[2] + p[6], own[3] + p[7]]);
    pool.attrs.count_include_pad = A.int(1);
    pool.inputs[0] = pad.inputs[0];
    g.nodes = g.nodes.filter((m) => m !== pad);
  }
};

/**
 * Canonise a freshly imported graph in place: fold constants (exporter shape arithmetic),
 * drop no-ops and the final softmax, fuse written-out LayerNorms and GELUs (fuse.ts), fold
 * BatchNorm, give an N-D MatMul its bias Add as a Gemm and per-channel affine constants into the
 * linear node before them, turn Pad+AveragePool into a padded AveragePool.
 */
export function canonize(g: Graph, shapeOf: (t: string) => number[] | undefined): void {
  const passes: Pass[] = [
    foldConstants,
    removeNoOps,
    removeFinalSoftmax,
    (g) => fuseLayerNorm(g, shapeOf),
    fuseGelu,
    foldBatchNorm,
    (g) => foldMatMulBias(g, shapeOf),
    matmulToGemm(shapeOf),
    foldAffineConstants,
    foldPadIntoAveragePool,
    pruneDead,
  ];
  for (const p of passes) p(g);
}
