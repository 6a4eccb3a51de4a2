// The LRP compiler: turns a canonical model graph into one graph that computes the forward pass
// and the whole relevance pass (spec sections 2-4) with the gradient trick. Backends only run it.
import { GraphBuilder } from '../graph/builder';
import { nameOutput, nameTargetOutputs, programGraph, selectTarget } from './program';
import { RulesConfig } from '../config';
import { WindowGeometry, flippedConvPads, reduceMeanGeometry, transposedPads, windowGeometry } from '../graph/geometry';
import {
  A,
  DType,
  Graph,
  ModelError,
  Node,
  Tensor,
  attrInt,
  attrInts,
  f32,
  numel,
  pruneDead,
  topoSort,
  asFloat32,
  consumers,
} from '../graph/graph';
import { Assignment, Group, IDENTITY, InputMod, Modifier, assignRule, ruleGroups } from './rules';

export type Shapes = Map<string, { dtype: DType; dims: number[] }>;

export interface CompiledLayer {
  name: string;
  opType: string;
  rule: string;
  outputShape: number[];
  /** Graph outputs holding the sum and the positive sum of the relevance at the node's input. */
  sumOutput: string;
  posOutput: string;
  /** Graph output with the channel-summed relevance map, when maps were requested. */
  mapOutput?: string;
  /** Graph output with the relevance per input channel (feature, for dense layers), with maps. */
  channelOutput?: string;
}

export interface LrpProgram {
  graph: Graph;
  inputName: string;
  layers: CompiledLayer[];
  numClasses: number;
}

export { LRP_LOGITS, LRP_TARGET, LRP_TARGET_USED } from './program';
export const LRP_RELEVANCE = 'lrp_relevance';

const NORM_EPS = 1e-6;

const PASS_OPS = new Set([
  'Relu',
  'LeakyRelu',
  'PRelu',
  'Clip',
  'Sigmoid',
  'HardSigmoid',
  'HardSwish',
  'Tanh',
  'Elu',
  'Selu',
  'Gelu',
  'Softplus',
  'Identity',
  'Dropout',
  'Cast',
  'BatchNormalization',
]);

const NONNEG_OUT = new Set(['Relu', 'Sigmoid', 'HardSigmoid', 'Softmax', 'Softplus']);
const NONNEG_PRESERVING = new Set([
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'GlobalMaxPool',
  'ReduceMean',
  'Flatten',
  'Reshape',
  'Transpose',
  'Squeeze',
  'Unsqueeze',
  'Identity',
  'Dropout',
  'Concat',
  'Add',
  'Mul',
  'Slice',
  'Split',
]);

export const LINEAR_OPS = new Set(['Conv', 'Gemm', 'MatMul']);

export interface Ctx {
  b: GraphBuilder;
  g: Graph;
  shapes: Shapes;
  cfg: RulesConfig;
  isAct: (t: string) => boolean;
  nonNeg: (t: string) => boolean;
  isFirst: (n: Node) => boolean;
  layers: CompiledLayer[];
  wantStats: boolean;
  wantMaps: boolean;
  /** Does every relevance contribution to this tensor vanish where the tensor is zero? */
  zeroWhereZero: (t: string) => boolean;
  /** Relevance tensors known to be a product x * q (the norm rule's x_i * s), by name. */
  products: Map<string, { x: string; q: string }>;
  consumers: Map<string, Node[]>;
}

export type Handler = (ctx: Ctx, n: Node, R: (string | null)[]) => (string | null)[];

export function dimsOf(ctx: Ctx, t: string): number[] {
  const s = ctx.shapes.get(t);
  if (!s) throw new ModelError(`${ctx.g.source}: no shape known for tensor '${t}'`);
  return s.dims;
}

export function constOf(ctx: Ctx, n: Node, idx: number, what: string): Tensor {
  const name = n.inputs[idx];
  const t = name ? ctx.g.initializers.get(name) : undefined;
  if (!t)
    throw new ModelError(
      `${ctx.g.source}: node '${n.name}' (${n.opType}): the ${what} must be a constant (an initializer) for LRP`,
    );
  return t;
}

function mapTensor(t: Tensor, m: Modifier): Tensor {
  const src = asFloat32(t);
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = m(src[i]);
  return { dtype: 'float32', dims: [...t.dims], data: out };
}

/** Record relevance statistics (and optionally the channel-summed map) for an explained node. */
function recordLayer(ctx: Ctx, n: Node, rule: string, relIn: string[]): void {
  if (relIn.length === 0 || !ctx.wantStats) return;
  const { b } = ctx;
  // several inputs of one shape (a residual Add): the map shows their relevance together
  const sameShape = n.inputs.every((i) => !ctx.isAct(i) || dimsOf(ctx, i).join() === dimsOf(ctx, n.inputs[0]).join());
  const total = relIn.length === 1 ? relIn[0] : ctx.wantMaps && sameShape ? ctx.b.sumOf(relIn) : null;
  // positive part = (sum + L1) / 2: two reductions, no intermediate tensor
  const sum = b.sumOf(relIn.map((r) => b.sumAll(r)));
  const l1 = b.sumOf(relIn.map((r) => b.op('ReduceL1', [r], { keepdims: A.int(0) })));
  const pos = b.mul(b.add(sum, l1), b.scalar(0.5));
  const layer: CompiledLayer = {
    name: n.name,
    opType: n.opType,
    rule,
    outputShape: dimsOf(ctx, n.outputs[0]),
    sumOutput: sum,
    posOutput: pos,
  };
  if (ctx.wantMaps && total) {
    const d = dimsOf(ctx, n.inputs[0]);
    if (d.length === 4) {
      layer.mapOutput = b.op('ReduceSum', [total, b.ints([0, 1])], { keepdims: A.int(0) });
      layer.channelOutput = b.op('ReduceSum', [total, b.ints([0, 2, 3])], { keepdims: A.int(0) });
    } else if (d.length === 2) layer.channelOutput = b.reshape(total, [d[1]]);
  }
  ctx.layers.push(layer);
}

/** stab(d) = d + eps * sign(d); a single Add when the sign of d is known. */
function stab(ctx: Ctx, d: string, eps: number, sign?: 'pos' | 'neg'): string {
  const { b } = ctx;
  if (sign === 'pos' || (!sign && ctx.nonNeg(d))) return b.add(d, b.scalar(eps));
  if (sign === 'neg') return b.add(d, b.scalar(-eps));
  return b.stabilize(d, eps);
}

/**
 * When `t` feeds only a Relu whose output's relevance vanishes wherever that output is zero,
 * the relevance at `t` vanishes wherever t <= 0, and that Relu output can stand in for `t` in
 * a denominator: stab(t) = relu(t) + eps wherever the relevance is non-zero. Returns the Relu
 * output, or null. This keeps `t` itself unused by the relevance pass, so a runtime can fuse
 * the producer with its Relu.
 */
function reluGate(ctx: Ctx, t: string): string | null {
  if (ctx.g.outputs.some((o) => o.name === t)) return null;
  const c = ctx.consumers.get(t) ?? [];
  if (c.length !== 1) return null;
  const r = c[0];
  const isRelu =
    r.opType === 'Relu' ||
    (r.opType === 'Clip' && isClipNonNeg(ctx.g, r) && !r.inputs[2]);
  if (!isRelu) return null;
  return ctx.zeroWhereZero(r.outputs[0]) ? r.outputs[0] : null;
}

// ---------------- linear nodes ----------------

export interface LinearOp {
  weight: Tensor;
  bias: Float32Array | null;
  /** Shape the bias vector broadcasts with over the node's output. */
  biasDims: number[];
  /** Emit f_{W'}(input) + bias'. */
  forward(input: string, w: Tensor, bias: Float32Array | null): string;
  /** Emit f_{W'}^T(s). */
  transposed(s: string, w: Tensor): string;
}

function flipSwapConvWeight(w: Tensor, group: number): Tensor {
  const [O, Ig, kh, kw] = w.dims;
  const Og = O / group;
  const src = asFloat32(w);
  const out = new Float32Array(src.length);
  // out shape [Ig * group, Og, kh, kw]
  for (let gi = 0; gi < group; gi++)
    for (let o = 0; o < Og; o++)
      for (let i = 0; i < Ig; i++)
        for (let y = 0; y < kh; y++)
          for (let x = 0; x < kw; x++) {
            const s = ((((gi * Og + o) * Ig + i) * kh + y) * kw + x);
            const d = ((((gi * Ig + i) * Og + o) * kh + (kh - 1 - y)) * kw + (kw - 1 - x));
            out[d] = src[s];
          }
  return { dtype: 'float32', dims: [Ig * group, Og, kh, kw], data: out };
}

function convOp(ctx: Ctx, n: Node): LinearOp {
  const { b } = ctx;
  const w = constOf(ctx, n, 1, 'weight');
  if (w.dims.length !== 4)
    throw new ModelError(`${ctx.g.source}: node '${n.name}' (Conv): only 2-D convolutions are supported (weight rank ${w.dims.length})`);
  const bias = n.inputs[2] ? asFloat32(constOf(ctx, n, 2, 'bias')) : null;
  const inD = dimsOf(ctx, n.inputs[0]);
  const outD = dimsOf(ctx, n.outputs[0]);
  const group = attrInt(n, 'group', 1);
  const geo: WindowGeometry = windowGeometry(n, w.dims.slice(2), inD.slice(2), outD.slice(2));
  const convAttrs = {
    strides: A.ints(geo.strides),
    dilations: A.ints(geo.dilations),
    pads: A.ints(geo.pads),
    group: A.int(group),
  };
  const flipped = flippedConvPads(geo);
  const tp = transposedPads(geo);
  const flippedWeights = new Map<Tensor, Tensor>();
  const flippedOf = (wm: Tensor): Tensor => {
    let f = flippedWeights.get(wm);
    if (!f) {
      f = flipSwapConvWeight(wm, group);
      flippedWeights.set(wm, f);
    }
    return f;
  };
  return {
    weight: w,
    bias,
    biasDims: [1, w.dims[0], 1, 1],
    forward(input, wm, bm) {
      const ins = [input, b.constant(wm, 'w')];
      if (bm) ins.push(b.constant(f32([bm.length], bm), 'b'));
      return b.op('Conv', ins, convAttrs, 'fwd');
    },
    transposed(s, wm) {
      if (flipped)
        return b.op(
          'Conv',
          [s, b.constant(flippedOf(wm), 'wT')],
          { strides: A.ints(geo.strides), dilations: A.ints(geo.dilations), pads: A.ints(flipped), group: A.int(group) },
          'bwd',
        );
      return b.op(
        'ConvTranspose',
        [s, b.constant(wm, 'w')],
        {
          strides: A.ints(geo.strides),
          dilations: A.ints(geo.dilations),
          pads: A.ints(tp.pads),
          output_padding: A.ints(tp.outputPadding),
          group: A.int(group),
        },
        'bwd',
      );
    },
  };
}

function transpose2d(t: Tensor): Tensor {
  const [r, c] = t.dims;
  const src = asFloat32(t);
  const out = new Float32Array(src.length);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = src[i * c + j];
  return { dtype: 'float32', dims: [c, r], data: out };
}

function gemmOp(ctx: Ctx, n: Node): LinearOp {
  const { b } = ctx;
  if (attrInt(n, 'transA', 0) !== 0)
    throw new ModelError(`${ctx.g.source}: node '${n.name}' (Gemm): transA on the activation is not supported`);
  const raw = constOf(ctx, n, 1, 'weight');
  const alpha = attrInt(n, 'alpha', 1);
  const beta = attrInt(n, 'beta', 1);
  // the weight stays in its stored layout ([K, N], or [N, K] with transB): no copy of big matrices
  const transB = attrInt(n, 'transB', 0) === 1;
  const w = alpha !== 1 ? mapTensor(raw, (v) => v * alpha) : raw.dtype === 'float32' ? raw : { ...raw, dtype: 'float32' as const, data: asFloat32(raw) };
  const N = transB ? w.dims[0] : w.dims[1];
  let bias: Float32Array | null = null;
  if (n.inputs[2]) {
    const c = asFloat32(constOf(ctx, n, 2, 'bias'));
    if (c.length !== N && c.length !== 1)
      throw new ModelError(`${ctx.g.source}: node '${n.name}' (Gemm): bias of ${c.length} values for ${N} outputs is not supported`);
    bias = new Float32Array(N);
    for (let k = 0; k < N; k++) bias[k] = beta * c[c.length === 1 ? 0 : k];
  }
  return {
    weight: w,
    bias,
    biasDims: [1, N],
    forward(input, wm, bm) {
      const ins = [input, b.constant(wm, 'w')];
      if (bm) ins.push(b.constant(f32([bm.length], bm), 'b'));
      return b.op('Gemm', ins, { transB: A.int(transB ? 1 : 0) }, 'fwd');
    },
    transposed(s, wm) {
      return b.op('Gemm', [s, b.constant(wm, 'w')], { transB: A.int(transB ? 0 : 1) }, 'bwd');
    },
  };
}

function matmulOp(ctx: Ctx, n: Node): LinearOp {
  const { b } = ctx;
  const w = constOf(ctx, n, 1, 'second operand');
  if (w.dims.length !== 2)
    throw new ModelError(`${ctx.g.source}: node '${n.name}' (MatMul): only a 2-D constant right operand is supported`);
  const wf = w.dtype === 'float32' ? w : { ...w, data: asFloat32(w), dtype: 'float32' as const };
  const transposedWeights = new Map<Tensor, Tensor>();
  return {
    weight: wf,
    bias: null,
    biasDims: [wf.dims[1]],
    forward(input, wm) {
      return b.op('MatMul', [input, b.constant(wm, 'w')], {}, 'fwd');
    },
    transposed(s, wm) {
      let t = transposedWeights.get(wm);
      if (!t) {
        t = transpose2d(wm);
        transposedWeights.set(wm, t);
      }
      return b.op('MatMul', [s, b.constant(t, 'wT')], {}, 'bwd');
    },
  };
}

export const LINEAR: Record<string, (ctx: Ctx, n: Node) => LinearOp> = { Conv: convOp, Gemm: gemmOp, MatMul: matmulOp };

/** Constant tensor of the node input's shape from per-channel values (channel axis 1). */
function channelFill(ctx: Ctx, n: Node, values: number[], what: string): Tensor {
  const d = dimsOf(ctx, n.inputs[0]);
  const C = d[1];
  if (values.length !== C && values.length !== 1)
    throw new ModelError(
      `${ctx.g.source}: node '${n.name}' (${n.opType}): ${what} has ${values.length} values but the input has ${C} channels`,
    );
  const inner = numel(d.slice(2));
  const t = f32(d);
  const data = t.data as Float32Array;
  for (let i = 0; i < data.length; i++) data[i] = values[values.length === 1 ? 0 : Math.floor(i / inner) % C];
  return t;
}

function linearHandler(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  const { b } = ctx;
  const kind = n.opType === 'Conv' ? 'Conv' : 'Gemm';
  const asg: Assignment = assignRule({ name: n.name, opType: n.opType, kind, isFirst: ctx.isFirst(n) }, ctx.cfg);
  const Rout = R[0];
  if (!Rout) return [];
  const x = n.inputs[0];
  if (asg.rule === 'pass') {
    const same = dimsOf(ctx, x).join() === dimsOf(ctx, n.outputs[0]).join();
    if (!same)
      throw new ModelError(`${ctx.g.source}: node '${n.name}' (${n.opType}): rule 'pass' needs a shape-preserving node`);
    recordLayer(ctx, n, 'pass', [Rout]);
    return [Rout];
  }
  const lin = LINEAR[n.opType](ctx, n);
  const z = n.outputs[0];
  const groups: Group[] = ruleGroups(asg.rule, asg.params);
  const nonneg = ctx.nonNeg(x);

  const inputs = new Map<InputMod, string>();
  const inputOf = (m: InputMod): string | null => {
    if (m === 'neg' && nonneg) return null;
    if (m === 'pos' && nonneg) m = 'x';
    const cached = inputs.get(m);
    if (cached) return cached;
    let t: string;
    switch (m) {
      case 'x':
        t = x;
        break;
      case 'pos':
        t = b.relu(x);
        break;
      case 'neg':
        t = b.negPart(x);
        break;
      case 'ones':
        t = b.constant(channelFill(ctx, n, [1], 'ones'), 'ones');
        break;
      case 'low':
      case 'high': {
        const v = m === 'low' ? asg.params.low : asg.params.high;
        if (!v)
          throw new ModelError(
            `${ctx.g.source}: node '${n.name}' (${n.opType}): rule zbox needs inputBounds (low/high) in the rules config`,
          );
        t = b.constant(channelFill(ctx, n, v, `inputBounds.${m}`), m);
        break;
      }
    }
    inputs.set(m, t);
    return t;
  };
  const weights = new Map<Modifier, Tensor>();
  const weightOf = (m: Modifier): Tensor => {
    if (m === IDENTITY) return lin.weight;
    let w = weights.get(m);
    if (!w) {
      w = mapTensor(lin.weight, m);
      weights.set(m, w);
    }
    return w;
  };
  const biasOf = (m: Modifier | null): Float32Array | null => {
    if (!m || !lin.bias) return null;
    if (m === IDENTITY) return lin.bias;
    return lin.bias.map(m);
  };

  // (with a zero stabiliser, LRP-0, the Relu output cannot stand in: 0/0 where z <= 0)
  const gate = groups.every((g) => g.eps > 0) ? reluGate(ctx, z) : null;
  const contributions: string[] = [];
  for (const grp of groups) {
    // below the Relu the relevance is zero where z <= 0: the negative branch has nothing to do
    if (gate && grp.mask === 'neg') continue;
    const terms = grp.terms
      .map((t) => ({ input: inputOf(t.input), mod: t.input, weight: t.weight }))
      .filter((t): t is { input: string; mod: InputMod; weight: Modifier } => t.input !== null);
    if (terms.length === 0) continue;
    const bias = biasOf(grp.bias);
    const plain = terms.length === 1 && terms[0].input === x && terms[0].weight === IDENTITY;
    const usesZ = plain && (grp.bias === IDENTITY || !lin.bias); // the denominator is z itself
    const product = ctx.products.get(Rout);
    let s: string;
    if (usesZ && gate) {
      // below a Relu gate, relu(z) + eps equals stab(z) wherever R != 0
      s = b.div(Rout, b.add(gate, b.scalar(grp.eps)));
    } else if (usesZ && !grp.mask && grp.eps > 0 && product?.x === z) {
      // R = z * q (z feeds a residual Add alone): R / stab(z) = q * |z| / (|z| + eps), exactly,
      // without the sign selection of the general stabiliser
      const abs = b.op('Abs', [z]);
      s = b.mul(product.q, b.div(abs, b.add(abs, b.scalar(grp.eps))));
    } else {
      const D = usesZ
        ? z
        : plain && grp.bias === null
          ? b.sub(z, b.constant(f32(lin.biasDims, lin.bias ?? []), 'bias'))
          : b.sumOf(terms.map((t, i) => lin.forward(t.input, weightOf(t.weight), i === 0 ? bias : null)));
      let Rg = Rout;
      if (grp.mask && !gate) {
        const cond = b.op(grp.mask === 'pos' ? 'Greater' : 'Less', [z, b.scalar(0)]);
        Rg = b.op('Where', [cond, Rout, b.scalar(0)]);
      }
      s = b.div(Rg, stab(ctx, D, grp.eps, grp.sign));
      // LRP-0 (a zero stabiliser): where the denominator is exactly 0 no relevance passes, instead
      // of 0/0 = NaN (e.g. a bias-free conv over an all-zero patch of a Relu output)
      if (grp.eps === 0) s = b.op('Where', [b.op('Equal', [D, b.scalar(0)]), b.scalar(0), s]);
    }
    if (grp.coef !== 1) s = b.mul(s, b.scalar(grp.coef));
    for (const t of terms) {
      const back = lin.transposed(s, weightOf(t.weight));
      contributions.push(t.mod === 'ones' ? back : b.mul(t.input, back));
    }
  }
  const Rin = contributions.length ? b.sumOf(contributions) : b.mul(x, b.scalar(0));
  recordLayer(ctx, n, asg.label, [Rin]);
  return [Rin];
}

// ---------------- pooling ----------------

export function maxPoolHandler(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  const { b } = ctx;
  if (!R[0]) return [];
  const x = n.inputs[0];
  const inD = dimsOf(ctx, x);
  let idx: string;
  if (n.outputs[1]) idx = n.outputs[1];
  else {
    idx = b.fresh('maxpool_idx');
    n.outputs = [n.outputs[0], idx];
  }
  if (attrInt(n, 'storage_order', 0) !== 0)
    throw new ModelError(`${ctx.g.source}: node '${n.name}' (MaxPool): storage_order 1 is not supported`);
  const total = numel(inD);
  const zeros = b.op('ConstantOfShape', [b.ints([total])], { value: A.tensor(f32([1], [0])) });
  const scattered = b.op(
    'ScatterElements',
    [zeros, b.reshape(idx, [-1]), b.reshape(R[0], [-1])],
    { axis: A.int(0), reduction: A.string('add') },
  );
  const Rin = b.reshape(scattered, inD);
  recordLayer(ctx, n, 'winner-take-all', [Rin]);
  return [Rin];
}

export function globalMaxPoolHandler(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  const { b } = ctx;
  if (!R[0]) return [];
  const x = n.inputs[0];
  const inD = dimsOf(ctx, x);
  const [N, C] = inD;
  const hw = numel(inD.slice(2));
  const flat = b.reshape(x, [N, C, hw]);
  const arg = b.op('ArgMax', [flat], { axis: A.int(2), keepdims: A.int(1) });
  const zeros = b.op('ConstantOfShape', [b.ints([N, C, hw])], { value: A.tensor(f32([1], [0])) });
  const scattered = b.op('ScatterElements', [zeros, arg, b.reshape(R[0], [N, C, 1])], { axis: A.int(2) });
  const Rin = b.reshape(scattered, inD);
  recordLayer(ctx, n, 'winner-take-all', [Rin]);
  return [Rin];
}

/** norm rule over an averaging node: R_in = x * T(R / stab(y)) where T is the transposed average. */
function normAverage(ctx: Ctx, n: Node, R: string, transposedAvg: (s: string) => string): string {
  const { b } = ctx;
  const y = n.outputs[0];
  const s = b.div(R, stab(ctx, y, NORM_EPS));
  return b.mul(n.inputs[0], transposedAvg(s));
}

function globalAvgHandler(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  const { b } = ctx;
  const inD = dimsOf(ctx, n.inputs[0]);
  const count = numel(inD.slice(2));
  const Rin = normAverage(ctx, n, R[0], (s) => b.mul(s, b.scalar(1 / count)));
  recordLayer(ctx, n, 'norm', [Rin]);
  return [Rin];
}

function reduceMeanHandler(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  const { b } = ctx;
  const { count, keptDims } = reduceMeanGeometry(n, dimsOf(ctx, n.inputs[0]));
  const Rin = normAverage(ctx, n, R[0], (s) => b.mul(b.reshape(s, keptDims), b.scalar(1 / count)));
  recordLayer(ctx, n, 'norm', [Rin]);
  return [Rin];
}

/** Per-output-position divisor of an AveragePool, as ORT computes it. */
function avgDivisors(geo: WindowGeometry, countIncludePad: boolean): Float32Array {
  const [OH, OW] = geo.outSize;
  const [H, W] = geo.inSize;
  const [pt, pl, pb, pr] = geo.pads;
  const out = new Float32Array(OH * OW);
  for (let oy = 0; oy < OH; oy++)
    for (let ox = 0; ox < OW; ox++) {
      const hs = oy * geo.strides[0] - pt;
      const ws = ox * geo.strides[1] - pl;
      let he = Math.min(hs + geo.kernel[0], H + pb);
      let we = Math.min(ws + geo.kernel[1], W + pr);
      let count: number;
      if (countIncludePad) count = (he - hs) * (we - ws);
      else {
        he = Math.min(he, H);
        we = Math.min(we, W);
        count = (he - Math.max(hs, 0)) * (we - Math.max(ws, 0));
      }
      out[oy * OW + ox] = 1 / Math.max(count, 1);
    }
  return out;
}

/** The gradient (transpose) of an AveragePool: spreads each output over its window / divisor. */
export function averagePoolTranspose(ctx: Ctx, n: Node): (s: string) => string {
  const { b } = ctx;
  const inD = dimsOf(ctx, n.inputs[0]);
  const outD = dimsOf(ctx, n.outputs[0]);
  if (inD.length !== 4) throw new ModelError(`${ctx.g.source}: node '${n.name}' (AveragePool): only 2-D pooling is supported`);
  const kernel = attrInts(n, 'kernel_shape', undefined);
  if (!kernel) throw new ModelError(`${ctx.g.source}: node '${n.name}' (AveragePool): kernel_shape missing`);
  const geo = windowGeometry(n, kernel, inD.slice(2), outD.slice(2));
  const C = inD[1];
  const inv = avgDivisors(geo, attrInt(n, 'count_include_pad', 0) === 1);
  const tp = transposedPads(geo);
  const ones = f32([C, 1, kernel[0], kernel[1]]);
  (ones.data as Float32Array).fill(1);
  return (s) =>
    b.op(
      'ConvTranspose',
      [b.mul(s, b.constant(f32([1, 1, outD[2], outD[3]], inv), 'avgdiv')), b.constant(ones, 'avgk')],
      { strides: A.ints(geo.strides), pads: A.ints(tp.pads), output_padding: A.ints(tp.outputPadding), group: A.int(C) },
      'avgT',
    );
}

function averagePoolHandler(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  const Rin = normAverage(ctx, n, R[0], averagePoolTranspose(ctx, n));
  recordLayer(ctx, n, 'norm', [Rin]);
  return [Rin];
}

// ---------------- element-wise binary ----------------

/** Sum a relevance tensor down to the shape of a broadcast operand. */
export function unbroadcast(ctx: Ctx, r: string, from: number[], to: number[]): string {
  if (from.join() === to.join()) return r;
  const { b } = ctx;
  const rank = from.length;
  const padded = [...new Array<number>(rank - to.length).fill(1), ...to];
  const axes: number[] = [];
  for (let i = 0; i < rank; i++) if (padded[i] === 1 && from[i] !== 1) axes.push(i);
  const summed = axes.length ? b.op('ReduceSum', [r, b.ints(axes)], { keepdims: A.int(1) }) : r;
  return b.reshape(summed, to);
}

function addSubHandler(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  const { b } = ctx;
  const acts = n.inputs.map((i) => ctx.isAct(i));
  const outD = dimsOf(ctx, n.outputs[0]);
  if (acts[0] && acts[1]) {
    // norm rule: each summand gets x_i / stab(y) * R
    const gate = reluGate(ctx, n.outputs[0]);
    const s = b.div(R[0], gate ? b.add(gate, b.scalar(NORM_EPS)) : stab(ctx, n.outputs[0], NORM_EPS));
    const parts = n.inputs.map((inp, i) => {
      let r = b.mul(inp, s);
      if (n.opType === 'Sub' && i === 1) r = b.op('Neg', [r]);
      else if (dimsOf(ctx, inp).join() === outD.join()) ctx.products.set(r, { x: inp, q: s });
      return unbroadcast(ctx, r, outD, dimsOf(ctx, inp));
    });
    recordLayer(ctx, n, 'norm', parts);
    return parts;
  }
  // with a constant: pass to the activation operand
  return n.inputs.map((inp, i) => (acts[i] ? unbroadcast(ctx, R[0] as string, outD, dimsOf(ctx, inp)) : null));
}

const GATE_TRANSPARENT = new Set(['Reshape', 'Flatten', 'Unsqueeze', 'Squeeze', 'Identity', 'Expand', 'Transpose', 'Cast']);
const AFFINE = new Set(['Add', 'Sub', 'Mul', 'Div']);

/**
 * How a Mul operand looks as a gate, looking through structural ops and affine ops with a constant:
 * 2 when computed through Sigmoid/HardSigmoid, 1 through a Clip (a hard sigmoid written out, as in
 * x * clip(x + 3, 0, 6) / 6), 0 otherwise; and the tensors passed on the way.
 */
function gateTrace(ctx: Ctx, t: string, prod: Map<string, Node>): { score: number; path: Set<string> } {
  const path = new Set<string>();
  let cur: string | undefined = t;
  while (cur && !path.has(cur)) {
    path.add(cur);
    const p = prod.get(cur);
    if (!p) break;
    if (p.opType === 'Sigmoid' || p.opType === 'HardSigmoid') return { score: 2, path };
    if (p.opType === 'Clip') return { score: 1, path: new Set([...path, p.inputs[0]]) };
    const affine = AFFINE.has(p.opType) && p.inputs.filter((i) => ctx.isAct(i)).length === 1;
    if (!GATE_TRANSPARENT.has(p.opType) && !affine) break;
    cur = p.inputs.find((i) => ctx.isAct(i));
  }
  return { score: 0, path };
}

/** Which operand of a product of two activations is the signal (the other one is the gate). */
function signalOperand(ctx: Ctx, n: Node, prod: Map<string, Node>): number {
  const [a, b] = n.inputs.map((i) => gateTrace(ctx, i, prod));
  if (a.score !== b.score) return a.score > b.score ? 1 : 0;
  // both bounded the same way: the gate is the one computed from the other (x * clip(x + 3))
  if (a.score > 0 && a.path.has(n.inputs[1])) return 1;
  if (b.score > 0 && b.path.has(n.inputs[0])) return 0;
  throw new ModelError(
    `${ctx.g.source}: node '${n.name}' (Mul): a product of two activations is supported only as a gate (one operand computed through Sigmoid, HardSigmoid or Clip)`,
  );
}

function mulDivHandler(ctx: Ctx, n: Node, R: (string | null)[], prod: Map<string, Node>): (string | null)[] {
  if (!R[0]) return [];
  const acts = n.inputs.map((i) => ctx.isAct(i));
  const outD = dimsOf(ctx, n.outputs[0]);
  if (acts[0] && acts[1]) {
    if (n.opType === 'Div')
      throw new ModelError(`${ctx.g.source}: node '${n.name}' (Div): division of two activations is not supported`);
    const signal = signalOperand(ctx, n, prod);
    const Rin = unbroadcast(ctx, R[0], outD, dimsOf(ctx, n.inputs[signal]));
    recordLayer(ctx, n, 'gate', [Rin]);
    return n.inputs.map((_, i) => (i === signal ? Rin : null));
  }
  // by a constant: the relevance of each output element goes to its input element
  return n.inputs.map((inp, i) => (acts[i] ? unbroadcast(ctx, R[0] as string, outD, dimsOf(ctx, inp)) : null));
}

// ---------------- structural ----------------

function reshapeBack(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  return [ctx.b.reshape(R[0], dimsOf(ctx, n.inputs[0]))];
}

function transposeBack(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  const rank = dimsOf(ctx, n.inputs[0]).length;
  const perm = attrInts(n, 'perm', undefined) ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const inv = new Array<number>(rank);
  perm.forEach((p, i) => (inv[p] = i));
  return [ctx.b.op('Transpose', [R[0]], { perm: A.ints(inv) })];
}

function concatBack(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  const outD = dimsOf(ctx, n.outputs[0]);
  let axis = attrInt(n, 'axis', 0);
  if (axis < 0) axis += outD.length;
  const sizes = n.inputs.map((i) => dimsOf(ctx, i)[axis]);
  const parts = ctx.b.node('Split', [R[0], ctx.b.ints(sizes)], { axis: A.int(axis) }, n.inputs.length);
  return parts.map((p, i) => (ctx.isAct(n.inputs[i]) ? p : null));
}

function padBack(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  const mode = n.attrs.mode && n.attrs.mode.type === 'string' ? n.attrs.mode.value : 'constant';
  if (mode !== 'constant')
    throw new ModelError(`${ctx.g.source}: node '${n.name}' (Pad): mode '${mode}' is not supported (only constant)`);
  const inD = dimsOf(ctx, n.inputs[0]);
  const pads = n.inputs[1] ? asFloat32(constOf(ctx, n, 1, 'pads')) : new Float32Array(2 * inD.length);
  const rank = inD.length;
  let axes = Array.from({ length: rank }, (_, i) => i);
  if (n.inputs[3]) axes = Array.from(asFloat32(constOf(ctx, n, 3, 'axes'))).map((a) => (a < 0 ? a + rank : a));
  const starts: number[] = [];
  const ends: number[] = [];
  axes.forEach((ax, k) => {
    starts.push(pads[k]);
    ends.push(pads[k] + inD[ax]);
  });
  const b = ctx.b;
  if (pads.some((p) => p < 0))
    throw new ModelError(`${ctx.g.source}: node '${n.name}' (Pad): negative pads are not supported`);
  return [b.op('Slice', [R[0], b.ints(starts), b.ints(ends), b.ints(axes)])];
}

function sliceBack(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  const inD = dimsOf(ctx, n.inputs[0]);
  const rank = inD.length;
  const starts = Array.from(asFloat32(constOf(ctx, n, 1, 'starts')));
  const ends = Array.from(asFloat32(constOf(ctx, n, 2, 'ends')));
  const axes = n.inputs[3] ? Array.from(asFloat32(constOf(ctx, n, 3, 'axes'))) : starts.map((_, i) => i);
  const steps = n.inputs[4] ? Array.from(asFloat32(constOf(ctx, n, 4, 'steps'))) : starts.map(() => 1);
  if (steps.some((s) => s !== 1))
    throw new ModelError(`${ctx.g.source}: node '${n.name}' (Slice): steps other than 1 are not supported`);
  const pads = new Array<number>(2 * rank).fill(0);
  axes.forEach((a0, k) => {
    const a = a0 < 0 ? a0 + rank : a0;
    const dim = inD[a];
    let s = starts[k] < 0 ? starts[k] + dim : starts[k];
    let e = ends[k] < 0 ? ends[k] + dim : ends[k];
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
    pads[a] = s;
    pads[a + rank] = dim - Math.max(e, s);
  });
  return [ctx.b.op('Pad', [R[0], ctx.b.ints(pads)])];
}

function splitBack(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  const present = R.filter((r) => r);
  if (!present.length) return [];
  const { b } = ctx;
  const inD = dimsOf(ctx, n.inputs[0]);
  let axis = attrInt(n, 'axis', 0);
  if (axis < 0) axis += inD.length;
  const parts = n.outputs.map((o, i) => {
    if (R[i]) return R[i] as string;
    const d = dimsOf(ctx, o);
    return b.op('ConstantOfShape', [b.ints(d)], { value: A.tensor(f32([1], [0])) });
  });
  return [b.op('Concat', parts, { axis: A.int(axis) })];
}

export function passHandler(_ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  return R[0] ? [R[0]] : [];
}

function expandBack(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  return [unbroadcast(ctx, R[0], dimsOf(ctx, n.outputs[0]), dimsOf(ctx, n.inputs[0]))];
}

// ---------------- zero preservation ----------------
// Whether a node's relevance contributions vanish wherever the receiving input is zero:
// 'always', 'ifOut' (when its output's relevance vanishes wherever the output is zero, and a zero
// input gives a zero output), or 'never'.
type ZeroRule = 'always' | 'ifOut' | 'never';

function linearZero(ctx: Ctx, n: Node): ZeroRule {
  const kind = n.opType === 'Conv' ? 'Conv' : 'Gemm';
  const asg = assignRule({ name: n.name, opType: n.opType, kind, isFirst: ctx.isFirst(n) }, ctx.cfg);
  if (asg.rule === 'pass') return 'never';
  const multiplicative = ruleGroups(asg.rule, asg.params).every((g) =>
    g.terms.every((t) => t.input === 'x' || t.input === 'pos' || t.input === 'neg'),
  );
  return multiplicative ? 'always' : 'never';
}

function clipZero(ctx: Ctx, n: Node): ZeroRule {
  const lo = n.inputs[1] ? ctx.g.initializers.get(n.inputs[1]) : undefined;
  const hi = n.inputs[2] ? ctx.g.initializers.get(n.inputs[2]) : undefined;
  if ((n.inputs[1] && !lo) || (n.inputs[2] && !hi)) return 'never';
  const okLo = !lo || Number(lo.data[0]) <= 0;
  const okHi = !hi || Number(hi.data[0]) >= 0;
  return okLo && okHi ? 'ifOut' : 'never';
}

const ZERO_RULES: Record<string, ZeroRule | ((ctx: Ctx, n: Node) => ZeroRule)> = {
  Conv: linearZero,
  Gemm: linearZero,
  MatMul: linearZero,
  AveragePool: 'always',
  GlobalAveragePool: 'always',
  ReduceMean: 'always',
  Add: (ctx, n) => (n.inputs.every((i) => ctx.isAct(i)) ? 'always' : 'never'),
  Sub: (ctx, n) => (n.inputs.every((i) => ctx.isAct(i)) ? 'always' : 'never'),
  Clip: clipZero,
};
for (const op of [
  'MaxPool',
  'GlobalMaxPool',
  'Mul',
  'Div',
  'Flatten',
  'Reshape',
  'Squeeze',
  'Unsqueeze',
  'Transpose',
  'Concat',
  'Pad',
  'Slice',
  'Split',
  'Expand',
  'Relu',
  'LeakyRelu',
  'PRelu',
  'Tanh',
  'Elu',
  'Selu',
  'Gelu',
  'HardSwish',
  'Identity',
  'Dropout',
  'Cast',
])
  ZERO_RULES[op] = 'ifOut';

function zeroRule(ctx: Ctx, n: Node): ZeroRule {
  const r = ZERO_RULES[n.opType];
  if (!r) return 'never';
  return typeof r === 'function' ? r(ctx, n) : r;
}

/** Structural ops route relevance back by their inverse index map, which is also their gradient. */
export const STRUCTURAL_HANDLERS: Record<string, Handler> = {
  Flatten: reshapeBack,
  Reshape: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Transpose: transposeBack,
  Concat: concatBack,
  Pad: padBack,
  Slice: sliceBack,
  Split: splitBack,
  Expand: expandBack,
};

function handlersFor(prod: Map<string, Node>): Record<string, Handler> {
  const h: Record<string, Handler> = {
    Conv: linearHandler,
    Gemm: linearHandler,
    MatMul: linearHandler,
    MaxPool: maxPoolHandler,
    GlobalMaxPool: globalMaxPoolHandler,
    AveragePool: averagePoolHandler,
    GlobalAveragePool: globalAvgHandler,
    ReduceMean: reduceMeanHandler,
    Add: addSubHandler,
    Sub: addSubHandler,
    Mul: (c, n, R) => mulDivHandler(c, n, R, prod),
    Div: (c, n, R) => mulDivHandler(c, n, R, prod),
    ...STRUCTURAL_HANDLERS,
  };
  for (const op of PASS_OPS) h[op] = passHandler;
  return h;
}

// ---------------- the compiler ----------------

export interface CompileOptions {
  /** Per-layer relevance sums (default true); without them only the input relevance is computed. */
  stats?: boolean;
  /** Per-layer channel-summed maps and channel sums (implies stats). */
  maps: boolean;
}

/**
 * Compile the LRP program for a canonical graph (see canonize.ts) with static shapes.
 * The result has inputs [model input, lrp_target (int64 [1], -1 = top class)] and outputs
 * lrp_logits, lrp_target_used, lrp_relevance plus the per-layer statistics.
 */
export function compileLrp(model: Graph, shapes: Shapes, cfg: RulesConfig, opts: CompileOptions): LrpProgram {
  const g = programGraph(model);
  const input = g.inputs[0].name;
  const logits = model.outputs[0].name;
  const order = topoSort(g);
  const prod = new Map<string, Node>();
  for (const n of order) for (const o of n.outputs) prod.set(o, n);

  // which tensors depend on the input, which are known non-negative, which lie after a linear node
  const act = new Set<string>([input]);
  const nonneg = new Set<string>();
  const afterLinear = new Set<string>();
  for (const n of order) {
    const actIns = n.inputs.filter((i) => act.has(i));
    if (!actIns.length) continue;
    for (const o of n.outputs) act.add(o);
    const isNonNeg =
      NONNEG_OUT.has(n.opType) ||
      (n.opType === 'Clip' && isClipNonNeg(g, n)) ||
      (NONNEG_PRESERVING.has(n.opType) && dataInputs(n).every((i) => nonneg.has(i) || isNonNegConst(g, i)));
    if (isNonNeg) nonneg.add(n.outputs[0]);
    if (LINEAR_OPS.has(n.opType) || actIns.some((i) => afterLinear.has(i))) for (const o of n.outputs) afterLinear.add(o);
  }
  if (!act.has(logits)) throw new ModelError(`${g.source}: the output '${logits}' does not depend on the input`);

  const b = new GraphBuilder(g);
  const contrib = new Map<string, { r: string; zp: boolean }[]>();
  const ctx: Ctx = {
    b,
    g,
    shapes,
    cfg,
    isAct: (t) => act.has(t),
    nonNeg: (t) => nonneg.has(t),
    isFirst: (n) => !afterLinear.has(n.inputs[0]),
    layers: [],
    wantStats: opts.stats !== false || opts.maps,
    wantMaps: opts.maps,
    products: new Map(),
    zeroWhereZero: (t) => {
      const l = contrib.get(t);
      return !!l && l.every((c) => c.zp);
    },
    consumers: consumers(g),
  };

  // initial relevance at the logits
  const logitDims = dimsOf(ctx, logits);
  const sel = selectTarget(b, logits, logitDims);
  const R0flat = cfg.init === 'logit' ? b.mul(sel.flatLogits, sel.oneHot) : sel.oneHot;
  const R0 = logitDims.length === 2 ? R0flat : b.reshape(R0flat, logitDims);

  const push = (t: string, r: string, zp: boolean) => {
    const l = contrib.get(t);
    if (l) l.push({ r, zp });
    else contrib.set(t, [{ r, zp }]);
  };
  push(logits, R0, cfg.init === 'logit');
  const handlers = handlersFor(prod);
  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k];
    const R = n.outputs.map((o) => {
      const l = contrib.get(o);
      return l ? b.sumOf(l.map((c) => c.r)) : null;
    });
    if (R.every((r) => r === null)) continue;
    const h = handlers[n.opType];
    if (!h) {
      const why = n.opType === 'Softmax' || n.opType === 'LogSoftmax' ? ' inside the network (only a final one is removed)' : '';
      throw new ModelError(`${g.source}: node '${n.name}': unsupported op type '${n.opType}'${why}`);
    }
    const zr = zeroRule(ctx, n);
    const zp =
      zr === 'always' || (zr === 'ifOut' && n.outputs.every((o, i) => R[i] === null || ctx.zeroWhereZero(o)));
    const back = h(ctx, n, R);
    back.forEach((r, i) => {
      if (r && act.has(n.inputs[i])) push(n.inputs[i], r, zp);
    });
  }
  const rIn = contrib.get(input);
  const relevance = rIn ? b.sumOf(rIn.map((c) => c.r)) : b.mul(input, b.scalar(0));

  // outputs
  nameTargetOutputs(b, sel);
  nameOutput(b, relevance, LRP_RELEVANCE, dimsOf(ctx, input));
  for (const l of ctx.layers) {
    g.outputs.push({ name: l.sumOutput, dtype: 'float32', shape: [] });
    g.outputs.push({ name: l.posOutput, dtype: 'float32', shape: [] });
    if (l.mapOutput) g.outputs.push({ name: l.mapOutput, dtype: 'float32', shape: [] });
    if (l.channelOutput) g.outputs.push({ name: l.channelOutput, dtype: 'float32', shape: [] });
  }
  pruneDead(g); // e.g. the norm rule's x_i * s when the next rule used its factors directly
  return { graph: g, inputName: input, layers: ctx.layers, numClasses: sel.numClasses };
}

/** The inputs that carry data (not shapes, axes or pads) for the non-negativity facts. */
function dataInputs(n: Node): string[] {
  if (n.opType === 'Concat' || n.opType === 'Add' || n.opType === 'Mul') return n.inputs.filter((i) => i);
  return [n.inputs[0]];
}

function isClipNonNeg(g: Graph, n: Node): boolean {
  const minName = n.inputs[1];
  if (!minName) return false;
  const t = g.initializers.get(minName);
  return !!t && t.data.length === 1 && Number(t.data[0]) >= 0;
}

function isNonNegConst(g: Graph, name: string): boolean {
  const t = g.initializers.get(name);
  if (!t) return false;
  for (let i = 0; i < t.data.length; i++) if (Number(t.data[i]) < 0) return false;
  return true;
}
