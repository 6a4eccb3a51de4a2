// What every op family's LRP handler works with: the compile context, shape and constant look-ups,
// layer statistics, the stabiliser and the Relu gate.
import { GraphBuilder } from '../../graph/builder';
import { RulesConfig } from '../../config';
import { A, DType, Graph, ModelError, Node, Tensor, asFloat32 } from '../../graph/graph';
import { Modifier } from '../rules';

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
  /**
   * Graph output with the relevance per token ([T], summed over the features) when the node's
   * input is a token tensor [1, T, D] or [T, D] (transformers), with maps.
   */
  tokenOutput?: string;
}

export interface LrpProgram {
  graph: Graph;
  inputName: string;
  layers: CompiledLayer[];
  numClasses: number;
}

export const LRP_RELEVANCE = 'lrp_relevance';


/** The stabiliser of the norm rule (sums, averages). */
export const NORM_EPS = 1e-6;

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

export function mapTensor(t: Tensor, m: Modifier): Tensor {
  const src = asFloat32(t);
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = m(src[i]);
  return { dtype: 'float32', dims: [...t.dims], data: out };
}

/** Record relevance statistics (and optionally the channel-summed map) for an explained node. */
export function recordLayer(ctx: Ctx, n: Node, rule: string, relIn: string[]): void {
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
    } else if (d.length === 2 && d[0] === 1) layer.channelOutput = b.reshape(total, [d[1]]);
    else if (d.length === 2) {
      // a dense layer applied per token ([T, D], the batch folded in)
      layer.tokenOutput = b.op('ReduceSum', [total, b.ints([1])], { keepdims: A.int(0) });
      layer.channelOutput = b.op('ReduceSum', [total, b.ints([0])], { keepdims: A.int(0) });
    } else if (d.length === 3 && d[0] === 1) {
      layer.tokenOutput = b.op('ReduceSum', [total, b.ints([0, 2])], { keepdims: A.int(0) });
      layer.channelOutput = b.op('ReduceSum', [total, b.ints([0, 1])], { keepdims: A.int(0) });
    }
  }
  ctx.layers.push(layer);
}

/** stab(d) = d + eps * sign(d); a single Add when the sign of d is known. */
export function stab(ctx: Ctx, d: string, eps: number, sign?: 'pos' | 'neg'): string {
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
export function reluGate(ctx: Ctx, t: string): string | null {
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

// ---------------- zero preservation ----------------
// Whether a node's relevance contributions vanish wherever the receiving input is zero:
// 'always', 'ifOut' (when its output's relevance vanishes wherever the output is zero, and a zero
// input gives a zero output), or 'never'.
export type ZeroRule = 'always' | 'ifOut' | 'never';

export function isClipNonNeg(g: Graph, n: Node): boolean {
  const minName = n.inputs[1];
  if (!minName) return false;
  const t = g.initializers.get(minName);
  return !!t && t.data.length === 1 && Number(t.data[0]) >= 0;
}

export function isNonNegConst(g: Graph, name: string): boolean {
  const t = g.initializers.get(name);
  if (!t) return false;
  for (let i = 0; i < t.data.length; i++) if (Number(t.data[i]) < 0) return false;
  return true;
}

/**
 * R / y for LRP-0 through an op without a rule (spec section 7: the gradient-like quantity c = R / y
 * passed through the op's Jacobian): the factor q when R is known as y * q, else the quotient,
 * 0 where y is exactly 0 (no relevance passes there, instead of 0/0 = NaN).
 */
export function ratio(ctx: Ctx, R: string, y: string): string {
  const known = ctx.products.get(R);
  if (known && known.x === y) return known.q;
  const { b } = ctx;
  return b.op('Where', [b.op('Equal', [y, b.scalar(0)]), b.scalar(0), b.div(R, y)]);
}

/** Swap the last two axes (the transpose of a batched matrix). */
export function swapLast(ctx: Ctx, t: string, rank: number): string {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return ctx.b.op('Transpose', [t], { perm: A.ints(perm) });
}
