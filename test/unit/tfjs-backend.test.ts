// The tf.js backend against onnxruntime-node on small random graphs, op by op.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { A, type Attr, type Graph, type Node, type Tensor, f32, i64 } from '../../src/engine/graph/graph';
import { createTfjsBackend } from '../../src/backends/tfjs';
import { maxRelErr, numbersOf, randn, rng, runOrt } from './tfjs-util';

interface Case {
  name: string;
  feeds: Record<string, Tensor>;
  inits?: Record<string, Tensor>;
  nodes: Node[];
  outputs: string[];
  /** dtype of each output (default float32) */
  outTypes?: Record<string, Tensor['dtype']>;
}

let counter = 0;
function N(opType: string, inputs: string[], outputs: string[] = ['y'], attrs: Record<string, Attr> = {}): Node {
  return { name: `${opType}_${counter++}`, opType, inputs, outputs, attrs };
}

const r = rng(42);
const x4 = (c = 4, h = 7, w = 6, n = 1) => randn([n, c, h, w], r);

function graphOf(cs: Case, outDims: Record<string, number[]>): Graph {
  return {
    inputs: Object.entries(cs.feeds).map(([name, t]) => ({ name, dtype: t.dtype, shape: t.dims })),
    outputs: cs.outputs.map((name) => ({ name, dtype: cs.outTypes?.[name] ?? 'float32', shape: outDims[name] })),
    nodes: cs.nodes,
    initializers: new Map(Object.entries(cs.inits ?? {})),
    layout: 'NCHW',
    source: `test:${cs.name}`,
  };
}

/** conv then op: exercises the backend's NHWC-held values */
function afterConv(name: string, op: (inp: string) => Node[], cin = 3, cout = 4, extra: Record<string, Tensor> = {}): Case {
  return {
    name,
    feeds: { x: x4(cin, 8, 9) },
    inits: { w: randn([cout, cin, 3, 3], r), ...extra },
    nodes: [N('Conv', ['x', 'w'], ['c'], { pads: A.ints([1, 1, 1, 1]) }), ...op('c')],
    outputs: ['y'],
  };
}

const cases: Case[] = [
  // ---- Conv ----
  { name: 'Conv 3x3 pads bias', feeds: { x: x4(3) }, inits: { w: randn([5, 3, 3, 3], r), b: randn([5], r) }, nodes: [N('Conv', ['x', 'w', 'b'], ['y'], { pads: A.ints([1, 1, 1, 1]) })], outputs: ['y'] },
  { name: 'Conv stride 2 asymmetric pads', feeds: { x: x4(3, 9, 8) }, inits: { w: randn([4, 3, 3, 3], r) }, nodes: [N('Conv', ['x', 'w'], ['y'], { strides: A.ints([2, 2]), pads: A.ints([0, 1, 1, 0]) })], outputs: ['y'] },
  { name: 'Conv dilation 2', feeds: { x: x4(3, 9, 9) }, inits: { w: randn([4, 3, 3, 3], r) }, nodes: [N('Conv', ['x', 'w'], ['y'], { dilations: A.ints([2, 2]), pads: A.ints([2, 2, 2, 2]) })], outputs: ['y'] },
  { name: 'Conv strided and dilated', feeds: { x: x4(3, 11, 10) }, inits: { w: randn([4, 3, 3, 3], r) }, nodes: [N('Conv', ['x', 'w'], ['y'], { dilations: A.ints([2, 2]), strides: A.ints([2, 2]), pads: A.ints([1, 2, 1, 0]) })], outputs: ['y'] },
  { name: 'Conv depthwise multiplier 2', feeds: { x: x4(4) }, inits: { w: randn([8, 1, 3, 3], r), b: randn([8], r) }, nodes: [N('Conv', ['x', 'w', 'b'], ['y'], { group: A.int(4), strides: A.ints([2, 2]), pads: A.ints([1, 1, 1, 1]) })], outputs: ['y'] },
  { name: 'Conv groups 2', feeds: { x: x4(4) }, inits: { w: randn([6, 2, 3, 3], r) }, nodes: [N('Conv', ['x', 'w'], ['y'], { group: A.int(2) })], outputs: ['y'] },
  { name: 'Conv auto_pad SAME_UPPER', feeds: { x: x4(3, 8, 7) }, inits: { w: randn([4, 3, 3, 3], r) }, nodes: [N('Conv', ['x', 'w'], ['y'], { auto_pad: A.string('SAME_UPPER'), strides: A.ints([2, 2]) })], outputs: ['y'] },
  { name: 'Conv 1D', feeds: { x: randn([1, 3, 10], r) }, inits: { w: randn([4, 3, 3], r) }, nodes: [N('Conv', ['x', 'w'], ['y'], { pads: A.ints([1, 0]), strides: A.ints([2]) })], outputs: ['y'] },
  { name: 'Conv with non-constant weight', feeds: { x: x4(3), w: randn([4, 3, 2, 2], r) }, nodes: [N('Conv', ['x', 'w'], ['y'])], outputs: ['y'] },
  // ---- ConvTranspose ----
  { name: 'ConvTranspose stride 2 pads output_padding', feeds: { x: x4(4, 5, 4) }, inits: { w: randn([4, 3, 3, 3], r), b: randn([3], r) }, nodes: [N('ConvTranspose', ['x', 'w', 'b'], ['y'], { strides: A.ints([2, 2]), pads: A.ints([1, 1, 1, 1]), output_padding: A.ints([1, 0]) })], outputs: ['y'] },
  { name: 'ConvTranspose stride 1 dilation 2', feeds: { x: x4(4, 5, 4) }, inits: { w: randn([4, 3, 3, 3], r) }, nodes: [N('ConvTranspose', ['x', 'w'], ['y'], { dilations: A.ints([2, 2]), pads: A.ints([0, 1, 2, 1]) })], outputs: ['y'] },
  { name: 'ConvTranspose depthwise stride 2', feeds: { x: x4(4, 5, 4) }, inits: { w: randn([4, 1, 3, 3], r) }, nodes: [N('ConvTranspose', ['x', 'w'], ['y'], { group: A.int(4), strides: A.ints([2, 2]), pads: A.ints([1, 1, 1, 1]), output_padding: A.ints([1, 1]) })], outputs: ['y'] },
  { name: 'ConvTranspose groups 2 stride 2', feeds: { x: x4(4, 5, 4) }, inits: { w: randn([4, 3, 2, 2], r) }, nodes: [N('ConvTranspose', ['x', 'w'], ['y'], { group: A.int(2), strides: A.ints([2, 2]) })], outputs: ['y'] },
  { name: 'ConvTranspose 1x1 stride 2 (pads > kernel)', feeds: { x: x4(3, 4, 4) }, inits: { w: randn([3, 2, 1, 1], r) }, nodes: [N('ConvTranspose', ['x', 'w'], ['y'], { strides: A.ints([2, 2]), output_padding: A.ints([1, 1]) })], outputs: ['y'] },
  // ---- Gemm / MatMul ----
  { name: 'Gemm transB alpha beta', feeds: { a: randn([2, 5], r) }, inits: { b: randn([3, 5], r), c: randn([3], r) }, nodes: [N('Gemm', ['a', 'b', 'c'], ['y'], { transB: A.int(1), alpha: A.float(0.5), beta: A.float(2) })], outputs: ['y'] },
  { name: 'Gemm transA', feeds: { a: randn([5, 2], r) }, inits: { b: randn([5, 3], r) }, nodes: [N('Gemm', ['a', 'b'], ['y'], { transA: A.int(1) })], outputs: ['y'] },
  { name: 'MatMul batched broadcast', feeds: { a: randn([2, 3, 4], r) }, inits: { b: randn([4, 5], r) }, nodes: [N('MatMul', ['a', 'b'])], outputs: ['y'] },
  { name: 'MatMul vector', feeds: { a: randn([4], r) }, inits: { b: randn([4, 5], r) }, nodes: [N('MatMul', ['a', 'b'])], outputs: ['y'] },
  // ---- element-wise ----
  ...(['Add', 'Sub', 'Mul', 'Div'] as const).map((op) =>
    afterConv(`${op} by per-channel constant (NHWC path)`, (c) => [N(op, [c, 'k'])], 3, 4, { k: randn([4, 1, 1], r) }),
  ),
  { name: 'Add broadcast plain', feeds: { a: randn([2, 3, 4], r), b: randn([3, 1], r) }, nodes: [N('Add', ['a', 'b'])], outputs: ['y'] },
  afterConv('Add of two activations, one NCHW', (c) => [N('Relu', [c], ['r']), N('Transpose', ['r'], ['t'], { perm: A.ints([0, 1, 3, 2]) }), N('Transpose', ['t'], ['u'], { perm: A.ints([0, 1, 3, 2]) }), N('Add', [c, 'u'])]),
  ...['Neg', 'Abs', 'Sign', 'Relu', 'Sigmoid', 'Tanh', 'HardSwish'].map((op) => afterConv(op, (c) => [N(op, [c])])),
  afterConv('Elu alpha', (c) => [N('Elu', [c], ['y'], { alpha: A.float(0.5) })]),
  afterConv('LeakyRelu', (c) => [N('LeakyRelu', [c], ['y'], { alpha: A.float(0.1) })]),
  afterConv('HardSigmoid', (c) => [N('HardSigmoid', [c], ['y'], { alpha: A.float(0.25), beta: A.float(0.4) })]),
  afterConv('Clip min max inputs', (c) => [N('Clip', [c, 'lo', 'hi'])], 3, 4, { lo: f32([], [-0.5]), hi: f32([], [0.7]) }),
  afterConv('Clip max only', (c) => [N('Clip', [c, '', 'hi'])], 3, 4, { hi: f32([], [0.3]) }),
  { name: 'Softmax axis -1', feeds: { x: randn([2, 7], r, 3) }, nodes: [N('Softmax', ['x'])], outputs: ['y'] },
  afterConv('Softmax axis 1 on 4D', (c) => [N('Softmax', [c], ['y'], { axis: A.int(1) })]),
  afterConv('Where Less Greater GreaterOrEqual Equal', (c) => [
    N('Less', [c, 'z'], ['l']),
    N('Greater', [c, 'z'], ['g']),
    N('GreaterOrEqual', [c, 'z'], ['ge']),
    N('Equal', ['l', 'g'], ['e']),
    N('Where', ['l', c, 'z'], ['w1']),
    N('Where', ['ge', 'w1', c], ['w2']),
    N('Where', ['e', 'z', 'w2'], ['y']),
  ], 3, 4, { z: f32([], [0]) }),
  afterConv('Cast to int64 and back', (c) => [N('Cast', [c], ['i'], { to: A.int(7) }), N('Cast', ['i'], ['y'], { to: A.int(1) })]),
  afterConv('BatchNormalization', (c) => [N('BatchNormalization', [c, 's', 'b', 'm', 'v'], ['y'], { epsilon: A.float(1e-3) })], 3, 4, {
    s: randn([4], r),
    b: randn([4], r),
    m: randn([4], r),
    v: f32([4], [0.5, 1, 2, 0.1]),
  }),
  { name: 'BatchNormalization 2D', feeds: { x: randn([3, 4], r) }, inits: { s: randn([4], r), b: randn([4], r), m: randn([4], r), v: f32([4], [0.5, 1, 2, 0.1]) }, nodes: [N('BatchNormalization', ['x', 's', 'b', 'm', 'v'])], outputs: ['y'] },
  // ---- reductions ----
  afterConv('ReduceSum axes input keepdims', (c) => [N('ReduceSum', [c, 'ax'])], 3, 4, { ax: i64([2], [2, 3]) }),
  afterConv('ReduceSum no keepdims', (c) => [N('ReduceSum', [c, 'ax'], ['y'], { keepdims: A.int(0) })], 3, 4, { ax: i64([1], [1]) }),
  afterConv('ReduceSum all', (c) => [N('ReduceSum', [c], ['y'], { keepdims: A.int(0) })]),
  afterConv('ReduceMax axes attribute', (c) => [N('ReduceMax', [c], ['y'], { axes: A.ints([1]) })]),
  afterConv('ReduceL1 axes attribute', (c) => [N('ReduceL1', [c], ['y'], { axes: A.ints([0, 1]), keepdims: A.int(0) })]),
  afterConv('ReduceL1 all', (c) => [N('ReduceL1', [c], ['y'], { keepdims: A.int(0) })]),
  afterConv('ReduceMean', (c) => [N('ReduceMean', [c], ['y'], { axes: A.ints([2, 3]), keepdims: A.int(0) })]),
  // ---- structure ----
  afterConv('Reshape with 0 and -1', (c) => [N('Reshape', [c, 's'])], 3, 4, { s: i64([3], [0, -1, 9]) }),
  afterConv('Transpose', (c) => [N('Transpose', [c], ['y'], { perm: A.ints([0, 2, 3, 1]) })]),
  afterConv('Concat axis 1 of NHWC values', (c) => [N('Relu', [c], ['r']), N('Concat', [c, 'r'], ['y'], { axis: A.int(1) })]),
  afterConv('Concat axis 3 mixed', (c) => [N('Transpose', [c], ['t'], { perm: A.ints([0, 1, 3, 2]) }), N('Transpose', ['t'], ['u'], { perm: A.ints([0, 1, 3, 2]) }), N('Concat', [c, 'u'], ['y'], { axis: A.int(-1) })]),
  afterConv('Slice steps and big ends', (c) => [N('Slice', [c, 'st', 'en', 'ax', 'sp'])], 3, 4, {
    st: i64([3], [1, -1, 0]),
    en: i64([3], [3, 0, 1e18]),
    ax: i64([3], [1, 2, 3]),
    sp: i64([3], [1, -2, 3]),
  }),
  afterConv('Slice default axes', (c) => [N('Slice', [c, 'st', 'en'])], 3, 4, { st: i64([2], [0, 1]), en: i64([2], [1, 3]) }),
  afterConv('Pad constant', (c) => [N('Pad', [c, 'p', 'v'])], 3, 4, { p: i64([8], [0, 1, 2, 0, 0, 0, 1, 3]), v: f32([], [0.5]) }),
  afterConv('Pad negative (crop)', (c) => [N('Pad', [c, 'p'])], 3, 4, { p: i64([8], [0, 0, -1, 2, 0, 0, 1, -2]) }),
  afterConv('Pad reflect', (c) => [N('Pad', [c, 'p'], ['y'], { mode: A.string('reflect') })], 3, 4, { p: i64([8], [0, 0, 2, 1, 0, 0, 1, 2]) }),
  afterConv('Pad edge', (c) => [N('Pad', [c, 'p'], ['y'], { mode: A.string('edge') })], 3, 4, { p: i64([8], [0, 0, 2, 1, 0, 0, 1, 2]) }),
  { name: 'Split sizes input', feeds: { x: randn([2, 7], r) }, inits: { s: i64([3], [2, 4, 1]) }, nodes: [N('Split', ['x', 's'], ['y', 'y2', 'y3'], { axis: A.int(1) })], outputs: ['y', 'y2', 'y3'] },
  afterConv('Split equal', (c) => [N('Split', [c], ['y', 'y2'], { axis: A.int(1) })]),
  afterConv('Flatten', (c) => [N('Flatten', [c])]),
  afterConv('Squeeze Unsqueeze', (c) => [N('ReduceSum', [c, 'ax'], ['s']), N('Squeeze', ['s', 'ax'], ['q']), N('Unsqueeze', ['q', 'ax2'])], 3, 4, { ax: i64([1], [1]), ax2: i64([2], [0, -1]) }),
  afterConv('Expand', (c) => [N('ReduceMax', [c], ['m'], { axes: A.ints([1]) }), N('Expand', ['m', 's'])], 3, 4, { s: i64([4], [2, 3, 1, 1]) }),
  afterConv('Identity', (c) => [N('Identity', [c])]),
  // ---- pooling ----
  afterConv('MaxPool pads stride with Indices', (c) => [N('MaxPool', [c], ['y', 'i'], { kernel_shape: A.ints([3, 3]), strides: A.ints([2, 2]), pads: A.ints([1, 1, 1, 1]) })]),
  afterConv('MaxPool ceil_mode', (c) => [N('MaxPool', [c], ['y', 'i'], { kernel_shape: A.ints([2, 2]), strides: A.ints([2, 2]), ceil_mode: A.int(1) })]),
  afterConv('MaxPool dilations', (c) => [N('MaxPool', [c], ['y', 'i'], { kernel_shape: A.ints([2, 2]), dilations: A.ints([2, 2]), pads: A.ints([0, 0, 1, 1]) })]),
  afterConv('MaxPool ties after Relu', (c) => [N('Relu', [c], ['rr']), N('Sub', ['rr', 'big'], ['s']), N('Relu', ['s'], ['t']), N('MaxPool', ['t'], ['y', 'i'], { kernel_shape: A.ints([2, 2]), strides: A.ints([1, 1]) })], 3, 4, { big: f32([], [100]) }),
  afterConv('MaxPool indices + ScatterElements add (winner-take-all)', (c) => [
    N('MaxPool', [c], ['p', 'i'], { kernel_shape: A.ints([3, 3]), strides: A.ints([2, 2]), pads: A.ints([1, 1, 1, 1]) }),
    N('Reshape', ['i', 'm1'], ['fi']),
    N('Reshape', ['p', 'm1'], ['fp']),
    N('Shape', [c], ['sh']),
    N('ReduceProd', ['sh'], ['n'], { keepdims: A.int(1) }),
    N('ConstantOfShape', ['n'], ['z']),
    N('ScatterElements', ['z', 'fi', 'fp'], ['y'], { axis: A.int(0), reduction: A.string('add') }),
  ], 3, 4, { m1: i64([1], [-1]) }),
  { name: 'ScatterElements axis 1', feeds: { d: randn([3, 5], r), u: randn([3, 2], r) }, inits: { i: i64([3, 2], [0, 4, 1, 1, -1, 2]) }, nodes: [N('ScatterElements', ['d', 'i', 'u'], ['y'], { axis: A.int(1), reduction: A.string('add') })], outputs: ['y'] },
  afterConv('AveragePool pads exclude', (c) => [N('AveragePool', [c], ['y'], { kernel_shape: A.ints([3, 3]), strides: A.ints([2, 2]), pads: A.ints([1, 1, 1, 1]) })]),
  afterConv('AveragePool pads include', (c) => [N('AveragePool', [c], ['y'], { kernel_shape: A.ints([3, 3]), strides: A.ints([2, 2]), pads: A.ints([1, 1, 1, 1]), count_include_pad: A.int(1) })]),
  afterConv('AveragePool ceil_mode', (c) => [N('AveragePool', [c], ['y'], { kernel_shape: A.ints([2, 2]), strides: A.ints([2, 2]), ceil_mode: A.int(1) })]),
  afterConv('AveragePool ceil include pad', (c) => [N('AveragePool', [c], ['y'], { kernel_shape: A.ints([3, 3]), strides: A.ints([2, 2]), pads: A.ints([1, 1, 1, 1]), ceil_mode: A.int(1), count_include_pad: A.int(1) })]),
  afterConv('GlobalAveragePool', (c) => [N('GlobalAveragePool', [c])]),
  afterConv('GlobalMaxPool', (c) => [N('GlobalMaxPool', [c])]),
  // ---- transformer ops (spec section 7) ----
  { name: 'LayerNormalization with Mean and InvStdDev', feeds: { x: randn([2, 5, 6], r, 2) }, inits: { g: randn([6], r), b: randn([6], r) }, nodes: [N('LayerNormalization', ['x', 'g', 'b'], ['y', 'm', 'is'], { axis: A.int(-1), epsilon: A.float(1e-5) })], outputs: ['y', 'm', 'is'] },
  { name: 'LayerNormalization over two axes, no bias', feeds: { x: randn([2, 3, 4], r) }, inits: { g: randn([3, 4], r) }, nodes: [N('LayerNormalization', ['x', 'g'], ['y'], { axis: A.int(1) })], outputs: ['y'] },
  { name: 'Gelu exact', feeds: { x: randn([3, 8], r, 2) }, nodes: [N('Gelu', ['x'])], outputs: ['y'] },
  { name: 'Gelu tanh', feeds: { x: randn([3, 8], r, 2) }, nodes: [N('Gelu', ['x'], ['y'], { approximate: A.string('tanh') })], outputs: ['y'] },
  { name: 'Erf', feeds: { x: randn([3, 8], r, 2) }, nodes: [N('Erf', ['x'])], outputs: ['y'] },
  { name: 'MatMul of two activations, batched', feeds: { a: randn([4, 5, 3], r), b: randn([4, 3, 5], r) }, nodes: [N('MatMul', ['a', 'b'])], outputs: ['y'] },
  { name: 'MatMul of two activations, broadcast batch', feeds: { a: randn([2, 4, 5, 3], r), b: randn([4, 3, 2], r) }, nodes: [N('MatMul', ['a', 'b'])], outputs: ['y'] },
  { name: 'Gather repeated indices', feeds: { x: randn([2, 5, 3], r) }, inits: { i: i64([4], [0, 4, -1, 2]) }, nodes: [N('Gather', ['x', 'i'], ['y'], { axis: A.int(1) })], outputs: ['y'] },
  { name: 'GatherElements', feeds: { x: randn([3, 4], r) }, inits: { i: i64([3, 2], [0, 3, 1, 1, -1, 2]) }, nodes: [N('GatherElements', ['x', 'i'], ['y'], { axis: A.int(1) })], outputs: ['y'] },
  { name: 'Tile', feeds: { x: randn([2, 3], r) }, inits: { k: i64([2], [2, 3]) }, nodes: [N('Tile', ['x', 'k'])], outputs: ['y'] },
  { name: 'Slice reverse', feeds: { x: randn([2, 7], r) }, inits: { st: i64([1], [-1]), en: i64([1], [-(2 ** 62)]), ax: i64([1], [1]), sp: i64([1], [-1]) }, nodes: [N('Slice', ['x', 'st', 'en', 'ax', 'sp'])], outputs: ['y'] },
  // ---- argmax / one-hot ----
  { name: 'ArgMax OneHot', feeds: { x: randn([2, 6], r) }, inits: { d: i64([], [6]), v: f32([2], [0, 1]) }, nodes: [N('ArgMax', ['x'], ['a'], { axis: A.int(1), keepdims: A.int(0) }), N('OneHot', ['a', 'd', 'v'], ['y'], { axis: A.int(-1) })], outputs: ['y'] },
  { name: 'OneHot axis 0', feeds: { x: randn([3], r) }, inits: { d: i64([], [4]), v: f32([2], [-1, 2]), k: i64([3], [1, 3, -1]) }, nodes: [N('OneHot', ['k', 'd', 'v'], ['y'], { axis: A.int(0) })], outputs: ['y'] },
];

const outInts = new Set(['i']);
for (const cs of cases)
  for (const n of cs.nodes)
    if (n.opType === 'MaxPool' && n.outputs[1] === 'i' && n.outputs[0] === 'y') {
      cs.outputs = ['y', 'i'];
      cs.outTypes = { i: 'int64' };
    }

test('tfjs backend: loads and names its runtime', async () => {
  const be = await createTfjsBackend();
  assert.equal(be.name, 'tfjs');
  assert.match(be.detail, /^tfjs 4\.\d+\.\d+ \((tfjs-node|wasm|cpu)\)$/);
});

for (const cs of cases)
  test(`tfjs backend vs onnxruntime: ${cs.name}`, async () => {
    const be = await createTfjsBackend();
    const probe = graphOf(cs, Object.fromEntries(cs.outputs.map((o) => [o, []])));
    const compiled = await be.compile(probe);
    const mine = await compiled.run(cs.feeds);
    await compiled.dispose();
    const ref = await runOrt(graphOf(cs, Object.fromEntries(cs.outputs.map((o) => [o, mine[o].dims]))), cs.feeds);
    for (const o of cs.outputs) {
      assert.deepEqual(mine[o].dims, ref[o].dims, `${o}: shape`);
      const a = numbersOf(mine[o]);
      const b = numbersOf(ref[o]);
      if (outInts.has(o) || ref[o].dtype !== 'float32') assert.deepEqual(a, b, `${o}: values`);
      else assert.ok(maxRelErr(a, b) < 1e-5, `${o}: max rel diff ${maxRelErr(a, b)}`);
    }
  });

test('tfjs backend: unsupported op names node, op and model', async () => {
  const be = await createTfjsBackend();
  const g: Graph = {
    inputs: [{ name: 'x', dtype: 'float32', shape: [2] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [2] }],
    nodes: [{ name: 'weird', opType: 'Einsum', inputs: ['x'], outputs: ['y'], attrs: {} }],
    initializers: new Map(),
    layout: 'NCHW',
    source: 'm.onnx',
  };
  await assert.rejects(be.compile(g), /m\.onnx: node 'weird' \(Einsum\).*not supported/);
});

// ---------- whole LRP programs: the tfjs and onnxruntime backends agree (issue 4, acceptance 2) ----------

import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Explainer } from '../../src/explain/explainer';
import { parseRulesConfig } from '../../src/engine/config';
import { FIXTURES_DIR, REFERENCE_DIR, readNpyFile, ulpSensitivity } from '../helpers';
import { emotionModel, relL2 } from './tfjs-util';

interface RefCase {
  id: string;
  model: string;
  input: string;
  target: number;
  rules: Record<string, unknown>;
  tolerance: { relL2: number };
  float32Noise: number;
}

const refCases = (JSON.parse(readFileSync(path.join(REFERENCE_DIR, 'manifest.json'), 'utf8')) as { cases: RefCase[] }).cases;
const explainers = new Map<string, Promise<Explainer>>();
function explainer(model: string, backend: 'tfjs' | 'onnxruntime'): Promise<Explainer> {
  const key = `${backend}|${model}`;
  let e = explainers.get(key);
  if (!e) {
    e = Explainer.load(model, { backend });
    explainers.set(key, e);
  }
  return e;
}

/**
 * Ill-conditioned in float32 (epsilon 1e-6 with zeroBias on shapes-vgg: the fixture's own float32
 * noise is 6e-4): onnxruntime without graph optimisations is 7e-3 from the reference, tf.js cpu
 * 1.3e-2, tf.js wasm 3.1e-2 (the fixture allows 1.26e-2). One ulp of input noise moves onnxruntime's own
 * result by up to 2e-2, more than the tolerance. Tracked, not hidden: see the todo test.
 */
const ILL_CONDITIONED = new Set(['shapes-vgg/model/sample0/c08-epsilon-zerobias', 'shapes-vgg/model-bn/sample0/c08-epsilon-zerobias']);

async function fixtureDistance(c: RefCase): Promise<number> {
  const model = path.resolve(REFERENCE_DIR, c.model);
  const x = readNpyFile(path.resolve(REFERENCE_DIR, c.input));
  const rules = parseRulesConfig(c.rules);
  const [a, b] = await Promise.all([explainer(model, 'tfjs'), explainer(model, 'onnxruntime')]);
  const ra = await a.explain(x, { target: c.target, rules });
  const rb = await b.explain(x, { target: c.target, rules });
  return relL2(ra.relevance.data as Float32Array, rb.relevance.data as Float32Array);
}

test('tfjs and onnxruntime backends agree on every reference fixture (relL2 < 1e-4)', async () => {
  const worst: string[] = [];
  for (const c of refCases) {
    if (ILL_CONDITIONED.has(c.id)) continue;
    const d = await fixtureDistance(c);
    if (d >= 1e-4) worst.push(`${c.id}: ${d.toExponential(2)}`);
  }
  assert.deepEqual(worst, []);
});

test('tfjs and onnxruntime backends agree on the ill-conditioned fixtures', { todo: 'float32 limit: epsilon 1e-6 with zeroBias amplifies float32 rounding; one ulp of input noise alone moves the result by 2e-2 (see the next test)' }, async () => {
  for (const c of refCases.filter((k) => ILL_CONDITIONED.has(k.id))) {
    const d = await fixtureDistance(c);
    assert.ok(d < 1e-4, `${c.id}: relL2 ${d}`);
  }
});

test('the ill-conditioned fixtures are a float32 limit: one ulp of input noise moves onnxruntime\'s relevance by more than 1e-4 and than the fixture\'s tolerance', async (t) => {
  for (const c of refCases.filter((k) => ILL_CONDITIONED.has(k.id))) {
    const x = readNpyFile(path.resolve(REFERENCE_DIR, c.input));
    const rules = parseRulesConfig(c.rules);
    const e = await explainer(path.resolve(REFERENCE_DIR, c.model), 'onnxruntime');
    const s = await ulpSensitivity(async (v) => (await e.explain(v, { target: c.target, rules })).relevance.data as Float32Array, x);
    t.diagnostic(`${c.id}: one-ulp sensitivity ${s.toExponential(2)} (fixture float32Noise ${c.float32Noise.toExponential(2)}, tolerance ${c.tolerance.relL2.toExponential(2)})`);
    assert.ok(s > 1e-4 && s > c.tolerance.relL2, `${c.id}: one-ulp sensitivity ${s.toExponential(2)}`);
  }
  // the measure itself: on a well-conditioned fixture it stays at the float32 noise level
  const c = refCases.find((k) => k.id === 'shapes-vgg/model/sample0/c01-epsilon') as RefCase;
  const e = await explainer(path.resolve(REFERENCE_DIR, c.model), 'onnxruntime');
  const rules = parseRulesConfig(c.rules);
  const x = readNpyFile(path.resolve(REFERENCE_DIR, c.input));
  const s = await ulpSensitivity(async (v) => (await e.explain(v, { target: c.target, rules })).relevance.data as Float32Array, x);
  t.diagnostic(`${c.id}: one-ulp sensitivity ${s.toExponential(2)} (float32Noise ${c.float32Noise.toExponential(2)})`);
  assert.ok(s < 1e-4 && s < 20 * c.float32Noise, `${c.id}: one-ulp sensitivity ${s.toExponential(2)}`);
});

// transformers and modern CNNs (spec section 7): within max(1e-4, 3 x the one-ulp sensitivity of
// onnxruntime's own result), the float32 limit `--stability` measures
test('tfjs and onnxruntime backends agree on every transformer / modern CNN fixture', async (t) => {
  const dir = path.join(FIXTURES_DIR, 'lrp-reference-modern');
  const modern = (JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { cases: RefCase[] }).cases;
  assert.ok(modern.length >= 13);
  const bad: string[] = [];
  for (const c of modern) {
    const model = path.resolve(dir, c.model);
    const x = readNpyFile(path.resolve(dir, c.input));
    const rules = parseRulesConfig(c.rules);
    const [a, b] = await Promise.all([explainer(model, 'tfjs'), explainer(model, 'onnxruntime')]);
    const ra = await a.explain(x, { target: c.target, rules });
    const rb = await b.explain(x, { target: c.target, rules });
    const d = relL2(ra.relevance.data as Float32Array, rb.relevance.data as Float32Array);
    let bound = 1e-4;
    if (d > bound) {
      const s = await ulpSensitivity(async (v) => (await b.explain(v, { target: c.target, rules })).relevance.data as Float32Array, x);
      bound = Math.max(bound, 3 * s);
    }
    t.diagnostic(`${c.id}: relL2 ${d.toExponential(2)} (bound ${bound.toExponential(2)})`);
    if (d > bound) bad.push(`${c.id}: ${d.toExponential(2)} > ${bound.toExponential(2)}`);
  }
  assert.deepEqual(bad, []);
});

test('tfjs and onnxruntime backends agree on a real tf.js model (emotion GraphModel, NHWC relevance)', async () => {
  const model = emotionModel();
  const [a, b] = await Promise.all([explainer(model, 'tfjs'), explainer(model, 'onnxruntime')]);
  assert.equal(a.input.layout, 'NHWC');
  const x = randn(a.input.dims, rng(9));
  (x.data as Float32Array).forEach((v, i, arr) => (arr[i] = (v + 1) / 2));
  // well-conditioned configs (with epsilon 1e-6 on random inputs, near-zero denominators make even
  // onnxruntime disagree with itself across optimisation levels at ~1e-3)
  for (const raw of [{ composite: 'gamma' }, { composite: 'epsilon-gamma-box', inputBounds: { low: [0], high: [1] } }, { composite: 'epsilon', epsilon: 0.01 }]) {
    const rules = parseRulesConfig(raw);
    const ra = await a.explain(x, { rules });
    const rb = await b.explain(x, { rules });
    assert.deepEqual(ra.relevance.dims, [1, 64, 64, 1]);
    assert.equal(ra.target, rb.target);
    const d = relL2(ra.relevance.data as Float32Array, rb.relevance.data as Float32Array);
    assert.ok(d < 1e-4, `${raw.composite}: relL2 ${d}`);
  }
});
