// The gradient compiler: like the LRP compiler (lrp.ts), a reverse-topological walk with one
// handler per op type, emitting one graph that computes the forward pass and the exact gradient
// of the target logit w.r.t. the input and/or chosen intermediate tensors ("taps"). Grad-CAM,
// CAM, gradient and gradient x input are all read off this one program.
//
// Every handler is the true local derivative (vector-Jacobian product) of its op, so the result
// is the gradient backpropagation frameworks compute: Relu masks by x > 0, MaxPool routes to the
// arg max, averages spread R / count, Add passes R to every summand, Mul uses the product rule,
// linear nodes use the transposed op. The structural handlers are the LRP compiler's (the inverse
// index map of a structural op is its gradient).
import { GraphBuilder } from '../graph/builder';
import { reduceMeanGeometry } from '../graph/geometry';
import { nameOutput, nameTargetOutputs, programGraph, selectTarget } from './program';
import { parseRulesConfig } from '../config';
import { A, Graph, ModelError, Node, asFloat32, attrInt, consumers, f32, numel, pruneDead, topoSort } from '../graph/graph';
import {
  Ctx,
  Handler,
  LINEAR,
  STRUCTURAL_HANDLERS,
  Shapes,
  averagePoolTranspose,
  constOf,
  dimsOf,
  globalMaxPoolHandler,
  maxPoolHandler,
  passHandler,
  swapLast,
  unbroadcast,
} from './lrp';
import { layerNormAxes } from './ops/normalisation';

export const GRAD_INPUT = 'grad_input';

export interface GradientTap {
  /** The tapped tensor of the model graph. */
  tensor: string;
  /** Graph outputs: the tensor's value and the gradient of the target logit w.r.t. it. */
  valueOutput: string;
  gradOutput: string;
}

export interface GradientProgram {
  graph: Graph;
  inputName: string;
  numClasses: number;
  /** Set when the input gradient was requested (graph output GRAD_INPUT). */
  inputGradOutput?: string;
  taps: GradientTap[];
}

export interface GradientCompileOptions {
  /** Compute the gradient w.r.t. the model input (default true). */
  input?: boolean;
  /** Intermediate tensors whose value and gradient the program also returns. */
  taps?: string[];
}

const one = (ctx: Ctx): string => ctx.b.scalar(1);
const zero = (ctx: Ctx): string => ctx.b.scalar(0);

/** R where cond holds, 0 elsewhere. */
function maskWhere(ctx: Ctx, cond: string, r: string): string {
  return ctx.b.op('Where', [cond, r, zero(ctx)]);
}

function floatAttr(n: Node, name: string, dflt: number): number {
  return attrInt(n, name, dflt);
}

// ---------------- element-wise activations ----------------

const reluGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  return [maskWhere(ctx, ctx.b.op('Greater', [n.inputs[0], zero(ctx)]), R[0])];
};

const leakyReluGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const { b } = ctx;
  const alpha = floatAttr(n, 'alpha', 0.01);
  return [b.op('Where', [b.op('Greater', [n.inputs[0], zero(ctx)]), R[0], b.mul(R[0], b.scalar(alpha))])];
};

const preluGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const { b } = ctx;
  return [b.op('Where', [b.op('Greater', [n.inputs[0], zero(ctx)]), R[0], b.mul(R[0], n.inputs[1])])];
};

const clipGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const { b } = ctx;
  const x = n.inputs[0];
  const conds: string[] = [];
  if (n.inputs[1]) conds.push(b.op('Not', [b.op('Less', [x, n.inputs[1]])]));
  if (n.inputs[2]) conds.push(b.op('Not', [b.op('Greater', [x, n.inputs[2]])]));
  if (!conds.length) return [R[0]];
  const cond = conds.length === 2 ? b.op('And', conds) : conds[0];
  return [maskWhere(ctx, cond, R[0])];
};

const sigmoidGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const { b } = ctx;
  const y = n.outputs[0];
  return [b.mul(R[0], b.mul(y, b.sub(one(ctx), y)))];
};

const hardSigmoidGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const { b } = ctx;
  const alpha = floatAttr(n, 'alpha', 0.2);
  const beta = floatAttr(n, 'beta', 0.5);
  const v = b.add(b.mul(n.inputs[0], b.scalar(alpha)), b.scalar(beta));
  const cond = b.op('And', [b.op('Greater', [v, zero(ctx)]), b.op('Less', [v, one(ctx)])]);
  return [maskWhere(ctx, cond, b.mul(R[0], b.scalar(alpha)))];
};

const hardSwishGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const { b } = ctx;
  // y = x * clip(x/6 + 1/2, 0, 1): dy/dx = 0 below -3, 1 above 3, x/3 + 1/2 between
  const x = n.inputs[0];
  const mid = b.add(b.mul(x, b.scalar(1 / 3)), b.scalar(0.5));
  const d = b.op('Where', [
    b.op('Less', [x, b.scalar(-3)]),
    zero(ctx),
    b.op('Where', [b.op('Greater', [x, b.scalar(3)]), one(ctx), mid]),
  ]);
  return [b.mul(R[0], d)];
};

const tanhGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const { b } = ctx;
  const y = n.outputs[0];
  return [b.mul(R[0], b.sub(one(ctx), b.mul(y, y)))];
};

const eluGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const { b } = ctx;
  const alpha = floatAttr(n, 'alpha', 1);
  const neg = b.mul(R[0], b.add(n.outputs[0], b.scalar(alpha)));
  return [b.op('Where', [b.op('Greater', [n.inputs[0], zero(ctx)]), R[0], neg])];
};

const seluGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const { b } = ctx;
  const alpha = floatAttr(n, 'alpha', 1.67326319217681884765625);
  const gamma = floatAttr(n, 'gamma', 1.05070102214813232421875);
  const pos = b.mul(R[0], b.scalar(gamma));
  const neg = b.mul(R[0], b.add(n.outputs[0], b.scalar(alpha * gamma)));
  return [b.op('Where', [b.op('Greater', [n.inputs[0], zero(ctx)]), pos, neg])];
};

const softplusGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  return [ctx.b.mul(R[0], ctx.b.op('Sigmoid', [n.inputs[0]]))];
};

const erfGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const { b } = ctx;
  const x = n.inputs[0];
  const e = b.op('Exp', [b.mul(b.mul(x, x), b.scalar(-1))]);
  return [b.mul(R[0], b.mul(e, b.scalar(2 / Math.sqrt(Math.PI))))];
};

const sqrtGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const { b } = ctx;
  return [b.div(R[0], b.mul(n.outputs[0], b.scalar(2)))];
};

const expGrad: Handler = (ctx, n, R) => (R[0] ? [ctx.b.mul(R[0], n.outputs[0])] : []);

const negGrad: Handler = (ctx, n, R) => (R[0] ? [ctx.b.op('Neg', [R[0]])] : []);

const powGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const { b } = ctx;
  if (ctx.isAct(n.inputs[1]))
    throw new ModelError(`${ctx.g.source}: node '${n.name}' (Pow): a non-constant exponent is not supported by the gradient methods`);
  const p = n.inputs[1];
  const d = b.mul(p, b.op('Pow', [n.inputs[0], b.sub(p, one(ctx))]));
  return [unbroadcast(ctx, b.mul(R[0], d), dimsOf(ctx, n.outputs[0]), dimsOf(ctx, n.inputs[0]))];
};

/** BatchNormalization left after canonisation (inference mode): y = (x - mean) * s + beta, s = g / sqrt(var + eps). */
const batchNormGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const scale = asFloat32(constOf(ctx, n, 1, 'scale'));
  const variance = asFloat32(constOf(ctx, n, 4, 'variance'));
  const eps = floatAttr(n, 'epsilon', 1e-5);
  const d = dimsOf(ctx, n.inputs[0]);
  const C = d[1];
  const s = new Float32Array(C);
  for (let c = 0; c < C; c++) s[c] = scale[scale.length === 1 ? 0 : c] / Math.sqrt(variance[variance.length === 1 ? 0 : c] + eps);
  const shape = d.map((v, i) => (i === 1 ? C : 1));
  return [ctx.b.mul(R[0], ctx.b.constant(f32(shape, s), 'bn_scale'))];
};

const geluGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const { b } = ctx;
  const x = n.inputs[0];
  const half = b.scalar(0.5);
  let d: string;
  if (n.attrs.approximate?.type === 'string' && n.attrs.approximate.value === 'tanh') {
    // y = x/2 (1 + t), t = tanh(k (x + c x^3)): y' = (1 + t)/2 + x/2 (1 - t^2) k (1 + 3 c x^2)
    const k = Math.sqrt(2 / Math.PI);
    const c = 0.044715;
    const x2 = b.mul(x, x);
    const t = b.op('Tanh', [b.mul(b.add(x, b.mul(b.mul(x2, x), b.scalar(c))), b.scalar(k))]);
    const inner = b.mul(b.add(one(ctx), b.mul(x2, b.scalar(3 * c))), b.scalar(k));
    d = b.add(b.mul(b.add(one(ctx), t), half), b.mul(b.mul(b.mul(x, half), b.sub(one(ctx), b.mul(t, t))), inner));
  } else {
    // y = x Phi(x): y' = Phi(x) + x phi(x)
    const cdf = b.mul(b.add(one(ctx), b.op('Erf', [b.mul(x, b.scalar(Math.SQRT1_2))])), half);
    const pdf = b.mul(b.op('Exp', [b.mul(b.mul(x, x), b.scalar(-0.5))]), b.scalar(1 / Math.sqrt(2 * Math.PI)));
    d = b.add(cdf, b.mul(x, pdf));
  }
  return [b.mul(R[0], d)];
};

const softmaxGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const { b } = ctx;
  const rank = dimsOf(ctx, n.inputs[0]).length;
  let axis = attrInt(n, 'axis', -1);
  if (axis < 0) axis += rank;
  const s = n.outputs[0];
  const dot = b.op('ReduceSum', [b.mul(R[0], s), b.ints([axis])], { keepdims: A.int(1) });
  return [b.mul(s, b.sub(R[0], dot))];
};

/** LayerNormalization, the exact gradient (sigma depends on x): inv (g - mean(g) - n mean(g n)), g = dL/dy * scale. */
const layerNormGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const { b } = ctx;
  if (ctx.isAct(n.inputs[1]) || (n.inputs[2] && ctx.isAct(n.inputs[2])))
    throw new ModelError(`${ctx.g.source}: node '${n.name}' (LayerNormalization): scale and bias must be constants`);
  while (n.outputs.length < 3) n.outputs.push('');
  if (!n.outputs[1]) n.outputs[1] = b.fresh('ln_mean');
  if (!n.outputs[2]) n.outputs[2] = b.fresh('ln_invstd');
  const axes = layerNormAxes(ctx, n);
  const mean = (t: string) => b.op('ReduceMean', [t], { axes: A.ints(axes), keepdims: A.int(1) });
  const inv = n.outputs[2];
  const xhat = b.mul(b.sub(n.inputs[0], n.outputs[1]), inv);
  const gn = b.mul(R[0], n.inputs[1]);
  return [b.mul(inv, b.sub(b.sub(gn, mean(gn)), b.mul(xhat, mean(b.mul(gn, xhat)))))];
};

/** MatMul: the transposed op against a constant weight, both products for two activations. */
const matmulGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const [a, w] = n.inputs;
  if (!ctx.isAct(w)) return linearGrad(ctx, n, R);
  const { b } = ctx;
  const aD = dimsOf(ctx, a);
  const wD = dimsOf(ctx, w);
  const yD = dimsOf(ctx, n.outputs[0]);
  if (aD.length < 2 || wD.length < 2)
    throw new ModelError(`${ctx.g.source}: node '${n.name}' (MatMul): a product of two activations needs operands of rank 2 or more`);
  const batch = (d: number[]) => [...yD.slice(0, -2), ...d.slice(-2)];
  return [
    ctx.isAct(a) ? unbroadcast(ctx, b.op('MatMul', [R[0], swapLast(ctx, w, wD.length)]), batch(aD), aD) : null,
    unbroadcast(ctx, b.op('MatMul', [swapLast(ctx, a, aD.length), R[0]]), batch(wD), wD),
  ];
};

// ---------------- linear, pooling ----------------

const linearGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const lin = LINEAR[n.opType](ctx, n);
  return [lin.transposed(R[0], lin.weight)];
};

const averagePoolGrad: Handler = (ctx, n, R) => (R[0] ? [averagePoolTranspose(ctx, n)(R[0])] : []);

const globalAvgGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const { b } = ctx;
  const inD = dimsOf(ctx, n.inputs[0]);
  const count = numel(inD.slice(2));
  return [b.op('Expand', [b.mul(R[0], b.scalar(1 / count)), b.ints(inD)])];
};

const reduceMeanGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const { b } = ctx;
  const inD = dimsOf(ctx, n.inputs[0]);
  const { count, keptDims } = reduceMeanGeometry(n, inD);
  return [b.op('Expand', [b.mul(b.reshape(R[0], keptDims), b.scalar(1 / count)), b.ints(inD)])];
};

// ---------------- element-wise binary ----------------

const addSubGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const outD = dimsOf(ctx, n.outputs[0]);
  return n.inputs.map((inp, i) => {
    if (!ctx.isAct(inp)) return null;
    const r = n.opType === 'Sub' && i === 1 ? ctx.b.op('Neg', [R[0] as string]) : (R[0] as string);
    return unbroadcast(ctx, r, outD, dimsOf(ctx, inp));
  });
};

const mulGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const outD = dimsOf(ctx, n.outputs[0]);
  // product rule: d(a*b)/da = b, d(a*b)/db = a
  return n.inputs.map((inp, i) =>
    ctx.isAct(inp) ? unbroadcast(ctx, ctx.b.mul(R[0] as string, n.inputs[1 - i]), outD, dimsOf(ctx, inp)) : null,
  );
};

const divGrad: Handler = (ctx, n, R) => {
  if (!R[0]) return [];
  const { b } = ctx;
  const outD = dimsOf(ctx, n.outputs[0]);
  const [a, d] = n.inputs;
  const out: (string | null)[] = [null, null];
  const s = b.div(R[0], d);
  if (ctx.isAct(a)) out[0] = unbroadcast(ctx, s, outD, dimsOf(ctx, a));
  // d(a/d)/dd = -a/d^2 = -y/d
  if (ctx.isAct(d)) out[1] = unbroadcast(ctx, b.op('Neg', [b.mul(s, n.outputs[0])]), outD, dimsOf(ctx, d));
  return out;
};

const HANDLERS: Record<string, Handler> = {
  Conv: linearGrad,
  Gemm: linearGrad,
  MatMul: matmulGrad,
  LayerNormalization: layerNormGrad,
  Softmax: softmaxGrad,
  Gelu: geluGrad,
  MaxPool: maxPoolHandler,
  GlobalMaxPool: globalMaxPoolHandler,
  AveragePool: averagePoolGrad,
  GlobalAveragePool: globalAvgGrad,
  ReduceMean: reduceMeanGrad,
  Add: addSubGrad,
  Sub: addSubGrad,
  Mul: mulGrad,
  Div: divGrad,
  Relu: reluGrad,
  LeakyRelu: leakyReluGrad,
  PRelu: preluGrad,
  Clip: clipGrad,
  Sigmoid: sigmoidGrad,
  HardSigmoid: hardSigmoidGrad,
  HardSwish: hardSwishGrad,
  Tanh: tanhGrad,
  Elu: eluGrad,
  Selu: seluGrad,
  Softplus: softplusGrad,
  Erf: erfGrad,
  Sqrt: sqrtGrad,
  Exp: expGrad,
  Neg: negGrad,
  Pow: powGrad,
  BatchNormalization: batchNormGrad,
  Identity: passHandler,
  Dropout: passHandler,
  Cast: passHandler,
  ...STRUCTURAL_HANDLERS,
};

/** Op types the gradient compiler differentiates. */
export const GRADIENT_OPS: ReadonlySet<string> = new Set(Object.keys(HANDLERS));

/**
 * Compile the gradient program for a canonical graph with static shapes (batch 1). Inputs: the
 * model input and lrp_target (int64 [1], -1 = top class); outputs: lrp_logits, lrp_target_used,
 * GRAD_INPUT (when requested) and per tap its value and gradient.
 */
export function compileGradient(model: Graph, shapes: Shapes, opts: GradientCompileOptions = {}): GradientProgram {
  const g = programGraph(model);
  const input = g.inputs[0].name;
  const logits = model.outputs[0].name;
  const order = topoSort(g);
  const act = new Set<string>([input]);
  for (const n of order) if (n.inputs.some((i) => act.has(i))) for (const o of n.outputs) if (o) act.add(o);
  if (!act.has(logits)) throw new ModelError(`${g.source}: the output '${logits}' does not depend on the input`);
  const taps = opts.taps ?? [];
  for (const t of taps) if (!act.has(t)) throw new ModelError(`${g.source}: tensor '${t}' does not depend on the input`);

  const b = new GraphBuilder(g);
  const ctx: Ctx = {
    b,
    g,
    shapes,
    cfg: parseRulesConfig(undefined),
    isAct: (t) => act.has(t),
    nonNeg: () => false,
    isFirst: () => false,
    layers: [],
    wantStats: false,
    wantMaps: false,
    zeroWhereZero: () => false,
    products: new Map(),
    consumers: consumers(g),
  };

  const logitDims = dimsOf(ctx, logits);
  const sel = selectTarget(b, logits, logitDims);
  // d logit_target / d logits: the one-hot of the target
  const G0 = logitDims.length === 2 ? sel.oneHot : b.reshape(sel.oneHot, logitDims);

  const contrib = new Map<string, string[]>();
  const push = (t: string, r: string) => {
    const l = contrib.get(t);
    if (l) l.push(r);
    else contrib.set(t, [r]);
  };
  const total = (t: string): string | null => {
    const l = contrib.get(t);
    if (!l) return null;
    if (l.length > 1) contrib.set(t, [b.sumOf(l)]);
    return (contrib.get(t) as string[])[0];
  };
  push(logits, G0);
  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k];
    const R = n.outputs.map((o) => (o ? total(o) : null));
    if (R.every((r) => r === null)) continue;
    const h = HANDLERS[n.opType];
    if (!h) {
      const why = n.opType === 'Softmax' || n.opType === 'LogSoftmax' ? ' inside the network (only a final one is removed)' : '';
      throw new ModelError(
        `${g.source}: node '${n.name}': op type '${n.opType}'${why} is not supported by the gradient methods`,
      );
    }
    const back = h(ctx, n, R);
    back.forEach((r, i) => {
      if (r && act.has(n.inputs[i])) push(n.inputs[i], r);
    });
  }

  nameTargetOutputs(b, sel);
  const prog: GradientProgram = { graph: g, inputName: input, numClasses: sel.numClasses, taps: [] };
  const gradOf = (t: string): string => total(t) ?? b.mul(t, b.scalar(0));
  if (opts.input !== false) {
    nameOutput(b, gradOf(input), GRAD_INPUT, dimsOf(ctx, input));
    prog.inputGradOutput = GRAD_INPUT;
  }
  taps.forEach((t, i) => {
    const valueOutput = `grad_tap_value_${i}`;
    const gradOutput = `grad_tap_grad_${i}`;
    const d = dimsOf(ctx, t);
    nameOutput(b, t, valueOutput, d);
    nameOutput(b, gradOf(t), gradOutput, d);
    prog.taps.push({ tensor: t, valueOutput, gradOutput });
  });
  // without the input gradient, the backward nodes below the deepest tap are dead
  pruneDead(g);
  return prog;
}
