// Static shape inference and constant folding over the graph IR (ONNX opset-17 semantics): the
// shape rules, one op family a file, and the values of small constant tensors (values.ts).
import { Graph, ModelError, Node, Tensor, describeNode, numel, topoSort } from '../graph';
import { NodeCtx, ShapeFn, TensorInfo } from './context';
import { ELEMENTWISE_SHAPES } from './elementwise';
import { LINEAR_SHAPES } from './linear';
import { REDUCE_SHAPES } from './reduce';
import { STRUCTURE_SHAPES } from './structure';
import { SHAPE_ONLY, VALUES, ZERO_COPY } from './values';
import { WINDOW_SHAPES } from './windows';

export { type TensorInfo, broadcastDims } from './context';

const SHAPES: Record<string, ShapeFn> = {
  ...ELEMENTWISE_SHAPES,
  ...WINDOW_SHAPES,
  ...LINEAR_SHAPES,
  ...REDUCE_SHAPES,
  ...STRUCTURE_SHAPES,
};

interface Propagation {
  infos: Map<string, TensorInfo>;
  values: Map<string, Tensor>;
}

interface Options {
  batch: number;
  /** Throw on anything that cannot be inferred (else leave it unknown). */
  strict: boolean;
  /** Largest tensor whose value is computed. */
  valueLimit: number;
}

function inputInfos(g: Graph, o: Options): Map<string, TensorInfo> {
  const infos = new Map<string, TensorInfo>();
  for (const [k, t] of g.initializers) infos.set(k, { dtype: t.dtype, dims: [...t.dims] });
  for (const v of g.inputs) {
    const bad = v.shape.findIndex((d, i) => typeof d === 'string' && i > 0);
    if (bad >= 0) {
      if (o.strict)
        throw new ModelError(`${g.source}: input '${v.name}' has a symbolic dimension '${v.shape[bad]}' (axis ${bad}); only the batch axis may be symbolic`);
      continue;
    }
    infos.set(v.name, { dtype: v.dtype, dims: v.shape.map((d) => (typeof d === 'number' ? d : o.batch)) });
  }
  return infos;
}

function computeValues(c: NodeCtx, out: TensorInfo[], p: Propagation, o: Options): void {
  const f = VALUES[c.node.opType];
  if (!f) return;
  if (!ZERO_COPY.has(c.node.opType) && out.some((x) => numel(x.dims) > o.valueLimit)) return;
  const ins: Tensor[] = [];
  if (!SHAPE_ONLY.has(c.node.opType))
    for (const name of c.node.inputs) {
      const v = p.values.get(name);
      if (name && !v) return;
      if (v) ins.push(v);
    }
  let vals: Tensor[];
  try {
    vals = f(c, ins, out);
  } catch {
    return; // e.g. an integer division by zero: the value stays unknown, the shape is still fine
  }
  c.node.outputs.forEach((name, i) => {
    if (name && vals[i]) p.values.set(name, vals[i]);
  });
}

function inferNode(g: Graph, n: Node, p: Propagation, o: Options): void {
  const ins = n.inputs.map((x) => (x ? p.infos.get(x) : undefined));
  if (n.inputs.some((x, i) => x && !ins[i])) {
    if (!o.strict) return;
    throw new ModelError(`${describeNode(g, n)}: the shape of input '${n.inputs[ins.findIndex((v, i) => !v && n.inputs[i])]}' is unknown`);
  }
  const fn = SHAPES[n.opType];
  if (!fn) throw new ModelError(`${describeNode(g, n)}: op type '${n.opType}' is not supported`);
  const c = new NodeCtx(g, n, ins, p.values);
  const out = fn(c);
  n.outputs.forEach((name, i) => {
    if (name && out[i]) p.infos.set(name, out[i]);
  });
  computeValues(c, out, p, o);
}

function propagate(g: Graph, o: Options): Propagation {
  const p: Propagation = { infos: inputInfos(g, o), values: new Map(g.initializers) };
  for (const n of topoSort(g)) {
    try {
      inferNode(g, n, p, o);
    } catch (e) {
      if (o.strict) {
        if (e instanceof ModelError) throw e;
        throw new ModelError(`${describeNode(g, n)}: ${(e as Error).message}`);
      }
    }
  }
  return p;
}

/**
 * Static shape and dtype of every tensor (inputs, initializers, node outputs). A symbolic batch
 * axis (axis 0) of an input is set to `batch`; any other symbolic dimension is an error.
 */
export function inferShapes(g: Graph, batch = 1): Map<string, TensorInfo> {
  return propagate(g, { batch, strict: true, valueLimit: 1 << 12 }).infos;
}

/**
 * Values of every tensor computable without running the model (initializers, shape arithmetic on
 * static shapes, ops on constants), with the shapes, in a non-strict walk; for folding (fold.ts).
 */
export function propagateValues(g: Graph, batch: number, valueLimit: number): { infos: Map<string, TensorInfo>; values: Map<string, Tensor> } {
  return propagate(g, { batch, strict: false, valueLimit });
}
