// What every backward program (LRP, gradient) shares: a private copy of the model graph, the
// target selection at the logits, and the named outputs.
import { GraphBuilder } from '../graph/builder';
import { A, Graph, ModelError, f32, i64, numel } from '../graph/graph';

export const LRP_TARGET = 'lrp_target';
export const LRP_LOGITS = 'lrp_logits';
export const LRP_TARGET_USED = 'lrp_target_used';

/** A copy of the model graph that a compiler may extend (initializer tensors are shared). */
export function programGraph(model: Graph): Graph {
  if (model.inputs.length !== 1)
    throw new ModelError(
      `${model.source}: the model has ${model.inputs.length} inputs; LRP Lens explains models with one image input`,
    );
  if (model.outputs.length < 1) throw new ModelError(`${model.source}: the model has no output`);
  return {
    ...model,
    inputs: model.inputs.map((i) => ({ ...i, shape: [...i.shape] })),
    outputs: [],
    nodes: model.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } })),
    initializers: new Map(model.initializers),
  };
}

export interface TargetSelection {
  /** The logits as [1, C]. */
  flatLogits: string;
  /** The explained class (int64 [1]): the input `lrp_target`, or the top class when it is < 0. */
  target: string;
  /** One-hot of the target, [1, C]. */
  oneHot: string;
  numClasses: number;
}

/** Add the `lrp_target` input and select the explained class from the logits. */
export function selectTarget(b: GraphBuilder, logits: string, logitDims: number[]): TargetSelection {
  const C = numel(logitDims.slice(1));
  const flatLogits = logitDims.length === 2 ? logits : b.reshape(logits, [logitDims[0], C]);
  b.g.inputs.push({ name: LRP_TARGET, dtype: 'int64', shape: [1] });
  const top = b.op('ArgMax', [flatLogits], { axis: A.int(1), keepdims: A.int(0) });
  const useTop = b.op('Less', [LRP_TARGET, b.constant(i64([], [0]), 'zero')]);
  const target = b.op('Where', [useTop, top, LRP_TARGET]);
  const oneHot = b.op('OneHot', [target, b.constant(i64([1], [C]), 'depth'), b.constant(f32([2], [0, 1]), 'onehot')], {
    axis: A.int(-1),
  });
  return { flatLogits, target, oneHot, numClasses: C };
}

/** Expose `src` as the graph output `name` (appended to the graph's outputs). */
export function nameOutput(b: GraphBuilder, src: string, name: string, dims: number[], dtype: 'float32' | 'int64' = 'float32'): void {
  b.g.nodes.push({ name: `${name}_node`, opType: 'Identity', inputs: [src], outputs: [name], attrs: {} });
  b.g.outputs.push({ name, dtype, shape: dims });
}

/** The standard outputs: logits [N, C] and the target used ([N], all equal); N is the batch (usually 1). */
export function nameTargetOutputs(b: GraphBuilder, sel: TargetSelection, batch = 1): void {
  nameOutput(b, sel.flatLogits, LRP_LOGITS, [batch, sel.numClasses]);
  nameOutput(b, sel.target, LRP_TARGET_USED, [batch], 'int64');
}
