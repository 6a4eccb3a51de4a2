// A forward graph with batch N, built from the canonical graph (which the engine fixes to batch 1
// at load). Reshape targets that spell the batch as a literal 1 are rewritten to N; anything else
// that pins the batch makes shape inference fail, and the caller falls back to batch-1 runs.
import { Graph, ModelError, Tensor, i64 } from '../graph/graph';
import { Shapes } from './lrp';
import { inferShapes } from '../graph/shapes';

/** The forward graph (first output only) with batch `n`, or an error saying why not. */
export function batchedForwardGraph(graph: Graph, shapes: Shapes, n: number): Graph {
  const input = graph.inputs[0];
  const out = graph.outputs[0];
  const initializers = new Map<string, Tensor>(graph.initializers);
  const nodes = graph.nodes.map((m) => ({ ...m, inputs: [...m.inputs], outputs: [...m.outputs], attrs: { ...m.attrs } }));
  let counter = 0;
  for (const m of nodes) {
    if (m.opType !== 'Reshape') continue;
    const s = initializers.get(m.inputs[1]);
    const inDims = shapes.get(m.inputs[0])?.dims;
    if (!s || !inDims || inDims[0] !== 1) continue;
    const v = Array.from(s.data, Number);
    if (v[0] !== 1) continue;
    v[0] = n;
    const name = `batch/reshape_shape/${counter++}`;
    initializers.set(name, i64([v.length], v));
    m.inputs[1] = name;
  }
  const g: Graph = {
    ...graph,
    inputs: [{ ...input, shape: [n, ...input.shape.slice(1)] }],
    outputs: [{ ...out }],
    nodes,
    initializers,
  };
  const inferred = inferShapes(g, n);
  const od = inferred.get(out.name)?.dims;
  if (!od || od[0] !== n)
    throw new ModelError(`${graph.source}: the output does not follow the batch size (shape [${(od ?? []).join(', ')}] for batch ${n})`);
  g.outputs[0].shape = [...od];
  return g;
}
