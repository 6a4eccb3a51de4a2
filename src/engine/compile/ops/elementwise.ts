// LRP for element-wise nodes: activations pass relevance on, a sum of activations splits it by the
// norm rule, a product of activations is a gate (the signal operand takes all); a constant summand
// absorbs its share (LRP-0), a constant factor passes the relevance to the other operand.
import { ModelError, Node } from '../../graph/graph';
import { Ctx, NORM_EPS, ZeroRule, dimsOf, ratio, recordLayer, reluGate, stab, unbroadcast } from './context';

export const PASS_OPS = new Set([
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
]);

// ---------------- element-wise binary ----------------

export function addSubHandler(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
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
  // with a constant (a bias not folded into a linear node, a position embedding, a mask): the
  // constant absorbs its share, R_x = x / (x + c) * R (LRP-0, spec sections 3 and 7)
  const q = ratio(ctx, R[0], n.outputs[0]);
  return n.inputs.map((inp, i) => {
    if (!acts[i]) return null;
    let r = b.mul(inp, q);
    if (n.opType === 'Sub' && i === 1) r = b.op('Neg', [r]);
    else if (dimsOf(ctx, inp).join() === outD.join()) ctx.products.set(r, { x: inp, q });
    return unbroadcast(ctx, r, outD, dimsOf(ctx, inp));
  });
}

const GATE_TRANSPARENT = new Set(['Reshape', 'Flatten', 'Unsqueeze', 'Squeeze', 'Identity', 'Expand', 'Transpose', 'Cast']);
const AFFINE = new Set(['Add', 'Sub', 'Mul', 'Div']);

/**
 * How a Mul operand looks as a gate, looking through structural ops and affine ops with a constant:
 * 2 when computed through Sigmoid/HardSigmoid/Erf/Tanh, 1 through a Clip (a hard sigmoid written out, as in
 * x * clip(x + 3, 0, 6) / 6), 0 otherwise; and the tensors passed on the way.
 */
function gateTrace(ctx: Ctx, t: string, prod: Map<string, Node>): { score: number; path: Set<string> } {
  const path = new Set<string>();
  let cur: string | undefined = t;
  while (cur && !path.has(cur)) {
    path.add(cur);
    const p = prod.get(cur);
    if (!p) break;
    if (['Sigmoid', 'HardSigmoid', 'Erf', 'Tanh'].includes(p.opType)) return { score: 2, path };
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
    `${ctx.g.source}: node '${n.name}' (Mul): a product of two activations is supported only as a gate (one operand computed through Sigmoid, HardSigmoid, Erf, Tanh or Clip)`,
  );
}

const STAT_REDUCE = new Set(['ReduceMean', 'ReduceSum', 'ReduceL2', 'ReduceSumSquare']);
const STAT_STEP = new Set([...STAT_REDUCE, 'Sqrt', 'Reciprocal', 'Pow', 'Abs', 'Expand', 'Unsqueeze', 'Reshape', 'Squeeze', 'Cast', 'Identity', ...AFFINE]);

/**
 * Is `t` a statistic of `of`: computed from `of` alone (and constants) through a reduction and
 * element-wise steps, as the scale sqrt(mean(x^2) + eps) of an RMS norm?
 */
function statisticOf(ctx: Ctx, t: string, of: string, prod: Map<string, Node>): boolean {
  let reduced = false;
  const seen = new Set<string>();
  const stack = [t];
  while (stack.length) {
    const cur = stack.pop() as string;
    if (cur === of || seen.has(cur)) continue;
    seen.add(cur);
    const p = prod.get(cur);
    if (!p || !STAT_STEP.has(p.opType)) return false;
    // every path ends at `of`, so products and quotients along the way (x * x, a norm over its
    // mean as in a global response norm) are statistics too
    const acts = p.inputs.filter((i) => i && ctx.isAct(i));
    if (STAT_REDUCE.has(p.opType)) reduced = true;
    stack.push(...acts);
  }
  return reduced;
}

export function mulDivHandler(ctx: Ctx, n: Node, R: (string | null)[], prod: Map<string, Node>): (string | null)[] {
  if (!R[0]) return [];
  const acts = n.inputs.map((i) => ctx.isAct(i));
  const outD = dimsOf(ctx, n.outputs[0]);
  if (acts[0] && acts[1]) {
    // a normalisation by a frozen statistic (RMS norm written out, spec section 7): the scale is a
    // constant, and a product with a constant passes the relevance to the other operand
    const [a, d] = n.inputs;
    const frozen = statisticOf(ctx, d, a, prod) ? 1 : n.opType === 'Mul' && statisticOf(ctx, a, d, prod) ? 0 : -1;
    if (frozen >= 0) {
      const Rin = unbroadcast(ctx, R[0], outD, dimsOf(ctx, n.inputs[1 - frozen]));
      recordLayer(ctx, n, 'frozen-scale', [Rin]);
      return n.inputs.map((_, i) => (i === 1 - frozen ? Rin : null));
    }
    if (n.opType === 'Div')
      throw new ModelError(`${ctx.g.source}: node '${n.name}' (Div): division of two activations is not supported (only by a statistic of the numerator, as in a norm)`);
    const signal = signalOperand(ctx, n, prod);
    const Rin = unbroadcast(ctx, R[0], outD, dimsOf(ctx, n.inputs[signal]));
    recordLayer(ctx, n, 'gate', [Rin]);
    return n.inputs.map((_, i) => (i === signal ? Rin : null));
  }
  // by a constant: the relevance of each output element goes to its input element
  return n.inputs.map((inp, i) => (acts[i] ? unbroadcast(ctx, R[0] as string, outD, dimsOf(ctx, inp)) : null));
}

export function passHandler(_ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  return R[0] ? [R[0]] : [];
}

export function clipZero(ctx: Ctx, n: Node): ZeroRule {
  const lo = n.inputs[1] ? ctx.g.initializers.get(n.inputs[1]) : undefined;
  const hi = n.inputs[2] ? ctx.g.initializers.get(n.inputs[2]) : undefined;
  if ((n.inputs[1] && !lo) || (n.inputs[2] && !hi)) return 'never';
  const okLo = !lo || Number(lo.data[0]) <= 0;
  const okHi = !hi || Number(hi.data[0]) >= 0;
  return okLo && okHi ? 'ifOut' : 'never';
}
