// Constant folding (spec sections 3 and 7): exporter shape arithmetic and computations on constants
// become initializers once the input size is fixed, so the LRP compiler only sees what truly depends
// on pixel values. Runs first among the canonisation passes.
import { Graph, Node, Tensor, pruneDead } from './graph';
import { propagateValues } from './shapes';

/**
 * Ops folded when their value is known without running the model: shape arithmetic (Shape, Gather,
 * Concat, Range, Mod, Cast, Div, Floor, Where, ...), index tables (GatherElements, Tile, Expand of
 * constants: class tokens, relative position indices), padding amounts and window counts. Linear
 * algebra on constants (Conv, MatMul) is left alone: it is cheap to run and may be large.
 */
export const FOLDABLE: ReadonlySet<string> = new Set([
  'Shape', 'Size', 'Gather', 'GatherElements', 'Concat', 'Unsqueeze', 'Squeeze', 'Cast', 'ConstantOfShape',
  'Reshape', 'Flatten', 'Slice', 'Identity', 'Transpose', 'Expand', 'Tile', 'Pad', 'Range',
  'Add', 'Sub', 'Mul', 'Div', 'Mod', 'Pow', 'Max', 'Min', 'Neg', 'Abs', 'Floor', 'Ceil', 'Sqrt', 'Sign', 'Reciprocal',
  'Exp', 'Log', 'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'Where',
  'ReduceSum', 'ReduceMean', 'ReduceProd', 'ReduceMax', 'ReduceMin', 'ScatterND',
]);

/** Largest value (elements) folded into an initializer. */
const VALUE_LIMIT = 1 << 22;

function sameTensor(a: Tensor | undefined, b: Tensor | undefined): boolean {
  if (!a || !b || a.dtype !== b.dtype || a.dims.length !== b.dims.length) return false;
  if (a.dims.some((d, i) => d !== b.dims[i])) return false;
  for (let i = 0; i < a.data.length; i++)
    if (a.data[i] !== b.data[i] && !(a.data[i] !== a.data[i] && b.data[i] !== b.data[i])) return false;
  return true;
}

/**
 * Replace every foldable node whose value is known without running the model (all inputs
 * constant, or shapes that are static) by initializers, then drop dead nodes. A value that
 * depends on a symbolic batch size is not folded: it is computed for batch 1 and batch 2 and
 * folded only when both agree.
 */
export function foldConstants(g: Graph): void {
  const one = propagateValues(g, 1, VALUE_LIMIT);
  const two = propagateValues(g, 2, VALUE_LIMIT);
  const graphOutputs = new Set(g.outputs.map((o) => o.name));
  const kept: Node[] = [];
  for (const n of g.nodes) {
    const outs = n.outputs.filter(Boolean);
    const fold =
      FOLDABLE.has(n.opType) &&
      outs.every((o) => !graphOutputs.has(o) && sameTensor(one.values.get(o), two.values.get(o)));
    if (!fold) {
      kept.push(n);
      continue;
    }
    for (const o of outs) g.initializers.set(o, one.values.get(o)!);
  }
  g.nodes = kept;
  pruneDead(g);
}
