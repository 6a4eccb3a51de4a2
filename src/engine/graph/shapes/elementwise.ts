// Shape rules of element-wise ops: unary ops keep the shape, binary ones broadcast, comparisons give
// bool; casts, Dropout (with its mask) and LayerNormalization (with its statistics).
import { DType } from '../graph';
import { dtypeFromOnnx } from '../../import/onnx';
import { NodeCtx, ShapeFn, TensorInfo, broadcastDims } from './context';

const same: ShapeFn = (c) => [{ ...c.in(0), dims: [...c.in(0).dims] }];

function broadcastOf(dtype: (c: NodeCtx) => DType, from = 0): ShapeFn {
  return (c) => {
    const dims = c.ins.slice(from).filter((x): x is TensorInfo => !!x).map((x) => x.dims);
    const out = broadcastDims(dims, () => c.err(`cannot broadcast shapes ${dims.map((d) => `[${d}]`).join(' and ')}`));
    return [{ dtype: dtype(c), dims: out }];
  };
}

const firstType = (c: NodeCtx): DType => c.in(0).dtype;
const boolType = (): DType => 'bool';
const elementwise = broadcastOf(firstType);
const comparison = broadcastOf(boolType);

const cast: ShapeFn = (c) => {
  const to = c.int('to', 1);
  const dtype = dtypeFromOnnx(to) ?? (to === 11 ? 'float64' : undefined);
  if (!dtype) throw c.err(`cast to ONNX type ${to} is not supported`);
  return [{ dtype, dims: [...c.in(0).dims] }];
};

const dropout: ShapeFn = (c) => [{ ...c.in(0) }, { dtype: 'bool', dims: [...c.in(0).dims] }];

const layerNorm: ShapeFn = (c) => {
  const d = c.in(0).dims;
  const axis = c.axis(c.int('axis', -1), d.length);
  const stat = d.map((x, i) => (i < axis ? x : 1));
  return [{ ...c.in(0) }, { dtype: 'float32', dims: stat }, { dtype: 'float32', dims: [...stat] }];
};

const UNARY = [
  'Sqrt', 'Neg', 'Abs', 'Sign', 'Exp', 'Log', 'Reciprocal', 'Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'HardSigmoid',
  'HardSwish', 'Tanh', 'Elu', 'Selu', 'Gelu', 'Softplus', 'Softsign', 'Erf', 'Identity', 'BatchNormalization',
  'Softmax', 'LogSoftmax', 'Hardmax', 'Floor', 'Ceil', 'Round', 'Sin', 'Cos', 'PRelu', 'InstanceNormalization', 'LRN',
  'Mish', 'Celu', 'ThresholdedRelu', 'ScatterElements', 'ScatterND', 'Trilu',
];
const BINARY = ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Mod', 'Max', 'Min', 'Sum', 'Mean', 'BitShift'];
const COMPARE = ['Less', 'Greater', 'GreaterOrEqual', 'LessOrEqual', 'Equal', 'And', 'Or', 'Xor'];

/** Element-wise ops, casts, Dropout and LayerNormalization: outputs of the (broadcast) input shape. */
export const ELEMENTWISE_SHAPES: Record<string, ShapeFn> = {
  ...Object.fromEntries(UNARY.map((op) => [op, same])),
  ...Object.fromEntries(BINARY.map((op) => [op, elementwise])),
  ...Object.fromEntries(COMPARE.map((op) => [op, comparison])),
  Not: (c) => [{ dtype: 'bool', dims: [...c.in(0).dims] }],
  IsNaN: (c) => [{ dtype: 'bool', dims: [...c.in(0).dims] }],
  Where: broadcastOf((c) => c.in(1).dtype),
  Cast: cast,
  CastLike: (c) => [{ dtype: c.in(1).dtype, dims: [...c.in(0).dims] }],
  Dropout: dropout,
  LayerNormalization: layerNorm,
};
