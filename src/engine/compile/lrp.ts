// The LRP compiler: turns a canonical model graph into one graph that computes the forward pass
// and the whole relevance pass (spec sections 2-4) with the gradient trick. Backends only run it.
// Each op family's rule sits in a file of its own under ops/ (linear, pooling, elementwise,
// structure); this file walks the graph from the logits to the input and dispatches by op type.
import { GraphBuilder } from '../graph/builder';
import { nameOutput, nameTargetOutputs, programGraph, selectTarget } from './program';
import { RulesConfig } from '../config';
import { Graph, ModelError, Node, consumers, pruneDead, topoSort } from '../graph/graph';
import { Ctx, Handler, LRP_RELEVANCE, LrpProgram, Shapes, ZeroRule, dimsOf, isClipNonNeg, isNonNegConst } from './ops/context';
import { LINEAR_OPS, linearHandler, linearZero } from './ops/linear';
import { averagePoolHandler, globalAvgHandler, globalMaxPoolHandler, maxPoolHandler, reduceMeanHandler } from './ops/pooling';
import { PASS_OPS, addSubHandler, clipZero, mulDivHandler, passHandler } from './ops/elementwise';
import { STRUCTURAL_HANDLERS } from './ops/structure';
import { ConditionSpec, applyCondition, isConditionNode } from './condition';
import { batchNormHandler, layerNormHandler } from './ops/normalisation';
import { bilinearMatMulHandler, softmaxHandler } from './ops/attention';

export { LRP_LOGITS, LRP_TARGET, LRP_TARGET_USED } from './program';
export * from './ops/context';
export { LINEAR, LINEAR_OPS, type LinearOp } from './ops/linear';
export { averagePoolTranspose, globalMaxPoolHandler, maxPoolHandler } from './ops/pooling';
export { passHandler } from './ops/elementwise';
export { STRUCTURAL_HANDLERS } from './ops/structure';

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

// ---------------- zero preservation ----------------
// Which op's relevance contributions vanish wherever the receiving input is zero (see ZeroRule).
const ZERO_RULES: Record<string, ZeroRule | ((ctx: Ctx, n: Node) => ZeroRule)> = {
  Conv: linearZero,
  Gemm: linearZero,
  MatMul: (ctx, n) => (ctx.isAct(n.inputs[1]) ? 'always' : linearZero(ctx, n)),
  AveragePool: 'always',
  GlobalAveragePool: 'always',
  ReduceMean: 'always',
  // a residual sum (norm rule) and a constant summand (LRP-0) both hand back x * q
  Add: 'always',
  Sub: 'always',
  Clip: clipZero,
  LayerNormalization: 'always',
  Softmax: 'always',
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
  'Gather',
  'GatherElements',
  'Tile',
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

function handlersFor(prod: Map<string, Node>): Record<string, Handler> {
  const h: Record<string, Handler> = {
    Conv: linearHandler,
    Gemm: linearHandler,
    MatMul: (c, n, R) => {
      if (c.isAct(n.inputs[1])) {
        if (!c.isAct(n.inputs[0]))
          throw new ModelError(`${c.g.source}: node '${n.name}' (MatMul): a constant left operand is not supported (only x @ W or a product of two activations)`);
        return bilinearMatMulHandler(c, n, R, prod);
      }
      return linearHandler(c, n, R);
    },
    LayerNormalization: layerNormHandler,
    BatchNormalization: batchNormHandler,
    Softmax: softmaxHandler,
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
  /** Conditional relevance: mask the relevance at this layer's output by the `lrp_mask` input (condition.ts). */
  condition?: ConditionSpec;
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
  let conditioned = false;
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
    if (opts.condition && isConditionNode(n, opts.condition)) {
      if (!R[0]) throw new ModelError(`${g.source}: layer '${opts.condition.layer}' receives no relevance for the target`);
      R[0] = applyCondition(b, R[0], dimsOf(ctx, n.outputs[0]), dimsOf(ctx, input)[0]);
      for (let i = 1; i < R.length; i++) R[i] = null;
      conditioned = true;
      // below L only what flows through L: drop the relevance waiting on every other tensor
      contrib.clear();
    }
    const back = h(ctx, n, R);
    back.forEach((r, i) => {
      if (r && act.has(n.inputs[i])) push(n.inputs[i], r, zp);
    });
  }
  if (opts.condition && !conditioned) {
    const names = order.filter((m) => m.outputs.some((o) => act.has(o)) && m.opType !== 'Identity').map((m) => m.name);
    throw new ModelError(
      `${g.source}: no layer '${opts.condition.layer}' on the relevance path (a node name or its output tensor; layers: ${names.slice(0, 12).join(', ')}${names.length > 12 ? ', ...' : ''})`,
    );
  }
  const rIn = contrib.get(input);
  const relevance = rIn ? b.sumOf(rIn.map((c) => c.r)) : b.mul(input, b.scalar(0));

  // outputs
  nameTargetOutputs(b, sel, logitDims[0]);
  nameOutput(b, relevance, LRP_RELEVANCE, dimsOf(ctx, input));
  for (const l of ctx.layers) {
    g.outputs.push({ name: l.sumOutput, dtype: 'float32', shape: [] });
    g.outputs.push({ name: l.posOutput, dtype: 'float32', shape: [] });
    if (l.mapOutput) g.outputs.push({ name: l.mapOutput, dtype: 'float32', shape: [] });
    if (l.channelOutput) g.outputs.push({ name: l.channelOutput, dtype: 'float32', shape: [] });
    if (l.tokenOutput) g.outputs.push({ name: l.tokenOutput, dtype: 'float32', shape: [] });
  }
  pruneDead(g); // e.g. the norm rule's x_i * s when the next rule used its factors directly
  return { graph: g, inputName: input, layers: ctx.layers, numClasses: sel.numClasses };
}

/** The inputs that carry data (not shapes, axes or pads) for the non-negativity facts. */
function dataInputs(n: Node): string[] {
  if (n.opType === 'Concat' || n.opType === 'Add' || n.opType === 'Mul') return n.inputs.filter((i) => i);
  return [n.inputs[0]];
}
