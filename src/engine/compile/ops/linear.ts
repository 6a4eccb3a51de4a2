// LRP for the linear nodes (Conv, Gemm, MatMul with a constant weight): every rule of the rules table
// (spec sections 2 and 4) as modified inputs, weights and biases, with the gradient trick.
import { A, ModelError, Node, Tensor, asFloat32, attrInt, f32, numel } from '../../graph/graph';
import { WindowGeometry, flippedConvPads, transposedPads, windowGeometry } from '../../graph/geometry';
import { Assignment, Group, IDENTITY, InputMod, Modifier, assignRule, ruleGroups } from '../rules';
import { Ctx, ZeroRule, constOf, dimsOf, mapTensor, recordLayer, reluGate, stab } from './context';

export const LINEAR_OPS = new Set(['Conv', 'Gemm', 'MatMul']);

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

export function linearHandler(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
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

export function linearZero(ctx: Ctx, n: Node): ZeroRule {
  const kind = n.opType === 'Conv' ? 'Conv' : 'Gemm';
  const asg = assignRule({ name: n.name, opType: n.opType, kind, isFirst: ctx.isFirst(n) }, ctx.cfg);
  if (asg.rule === 'pass') return 'never';
  const multiplicative = ruleGroups(asg.rule, asg.params).every((g) =>
    g.terms.every((t) => t.input === 'x' || t.input === 'pos' || t.input === 'neg'),
  );
  return multiplicative ? 'always' : 'never';
}
