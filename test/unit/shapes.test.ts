import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { A, Attr, DType, Dim, Graph, ModelError, Node, Tensor, f32, i64, numel, toNumbers } from '../../src/engine/graph/graph';
import { exportOnnx, importOnnx } from '../../src/engine/import/onnx';
import { TensorInfo, inferShapes } from '../../src/engine/graph/shapes';
import { foldConstants } from '../../src/engine/graph/fold';
import { REFERENCE_DIR, REFERENCE_MODELS, readNpyF32 } from '../helpers';

const FIXTURES = REFERENCE_DIR;
const MODELS = REFERENCE_MODELS;

// ---------- helpers ----------

function randn(n: number, seed = 1): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 1073741824 - 1;
  });
}

function feed(dims: number[], dtype: DType = 'float32', seed = 1): ort.Tensor {
  if (dtype === 'int64') return new ort.Tensor('int64', BigInt64Array.from(randn(numel(dims), seed), (v) => BigInt(Math.round(v * 3))), dims);
  return new ort.Tensor('float32', Float32Array.from(randn(numel(dims), seed)), dims);
}

/** Every node output becomes a graph output, declared with the inferred dtype and dims. */
function exposeAll(g: Graph, infos: Map<string, TensorInfo>): Graph {
  const names = g.nodes.flatMap((n) => n.outputs.filter(Boolean));
  return {
    ...g,
    outputs: names.map((name) => {
      const info = infos.get(name);
      assert.ok(info, `no shape inferred for ${name}`);
      return { name, dtype: info.dtype, shape: info.dims };
    }),
  };
}

/** Run the graph in onnxruntime with every tensor exposed and compare each one's dims and dtype with inferShapes. */
async function checkAgainstOrt(g: Graph, batch: number, feeds: Record<string, ort.Tensor>): Promise<number> {
  const infos = inferShapes(g, batch);
  const session = await ort.InferenceSession.create(exportOnnx(exposeAll(g, infos)));
  const res = await session.run(feeds);
  let checked = 0;
  for (const [name, t] of Object.entries(res)) {
    const info = infos.get(name)!;
    assert.deepEqual(info.dims, [...t.dims], `dims of '${name}'`);
    assert.equal(info.dtype, t.type, `dtype of '${name}'`);
    checked++;
  }
  return checked;
}

/** A tiny graph builder over the IR. */
class Builder {
  nodes: Node[] = [];
  initializers = new Map<string, Tensor>();
  private k = 0;

  constructor(readonly inputs: { name: string; dtype: DType; shape: Dim[] }[]) {}

  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, nOut = 1): string[] {
    const name = `${opType.toLowerCase()}_${this.k++}`;
    const outputs = nOut === 1 ? [name] : Array.from({ length: nOut }, (_, i) => `${name}_${i}`);
    this.nodes.push({ name, opType, inputs, outputs, attrs });
    return outputs;
  }

  one(opType: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    return this.op(opType, inputs, attrs)[0];
  }

  init(name: string, t: Tensor): string {
    this.initializers.set(name, t);
    return name;
  }

  ints(name: string, v: number[], dims = [v.length]): string {
    return this.init(name, i64(dims, v));
  }

  floats(name: string, dims: number[], seed = 3): string {
    return this.init(name, f32(dims, randn(numel(dims), seed)));
  }

  graph(outputs: string[] = []): Graph {
    return {
      inputs: this.inputs,
      outputs: outputs.map((name) => ({ name, dtype: 'float32', shape: [] })),
      nodes: this.nodes,
      initializers: this.initializers,
      layout: 'NCHW',
      source: 'built.onnx',
    };
  }
}

// ---------- fixtures ----------

describe('inferShapes on the fixture models', () => {
  for (const m of MODELS) {
    it(`matches the shapes onnxruntime computes for every tensor of ${m}`, async () => {
      const file = path.join(FIXTURES, m);
      const g = importOnnx(fs.readFileSync(file), file);
      const x = readNpyF32(path.join(FIXTURES, m.split('/')[0], 'inputs/sample0.npy'));
      const n = await checkAgainstOrt(g, 1, { input: new ort.Tensor('float32', x.data, x.dims) });
      assert.equal(n, g.nodes.length);
      const infos = inferShapes(g);
      assert.deepEqual(infos.get('logits')!.dims, [1, m.startsWith('digits') ? 10 : 4]);
      assert.deepEqual(infos.get('input')!.dims, x.dims);
    });
  }

  it('sets a symbolic batch dimension to the requested batch', async () => {
    const file = path.join(FIXTURES, 'shapes-resnet/model-dynbatch.onnx');
    const g = importOnnx(fs.readFileSync(file), file);
    assert.deepEqual(inferShapes(g, 3).get('logits')!.dims, [3, 4]);
    assert.deepEqual(inferShapes(g).get('logits')!.dims, [1, 4]);
    await checkAgainstOrt(g, 3, { input: feed([3, 3, 64, 64]) });
  });
});

// ---------- many ops against onnxruntime ----------

function buildZoo(): { g: Graph; feeds: Record<string, ort.Tensor> } {
  const b = new Builder([
    { name: 'x', dtype: 'float32', shape: ['N', 4, 9, 9] },
    { name: 'ids', dtype: 'int64', shape: [2, 3] },
  ]);
  const x = 'x';
  // convolutions
  b.one('Conv', [x, b.floats('wg', [8, 2, 3, 3])], { group: A.int(2), dilations: A.ints([2, 2]), pads: A.ints([1, 0, 2, 1]), strides: A.ints([2, 1]) });
  b.one('Conv', [x, b.floats('wsu', [3, 4, 3, 2]), b.floats('bsu', [3])], { auto_pad: A.string('SAME_UPPER'), strides: A.ints([2, 3]) });
  b.one('Conv', [x, b.floats('wsl', [3, 4, 2, 2])], { auto_pad: A.string('SAME_LOWER'), strides: A.ints([2, 2]) });
  b.one('Conv', [x, b.floats('wv', [3, 4, 4, 4])], { auto_pad: A.string('VALID'), strides: A.ints([3, 2]) });
  b.one('Conv', [x, b.floats('wdw', [4, 1, 3, 3])], { group: A.int(4), kernel_shape: A.ints([3, 3]) });
  b.one('ConvTranspose', [x, b.floats('wt', [4, 3, 3, 3])], { strides: A.ints([2, 2]), pads: A.ints([1, 1, 0, 0]), output_padding: A.ints([1, 0]) });
  b.one('ConvTranspose', [x, b.floats('wt2', [4, 1, 3, 3])], { group: A.int(2), strides: A.ints([2, 2]), output_shape: A.ints([20, 19]) });
  b.one('ConvTranspose', [x, b.floats('wt3', [4, 2, 2, 2])], { dilations: A.ints([2, 1]) });
  // pooling
  b.op('MaxPool', [x], { kernel_shape: A.ints([3, 3]), strides: A.ints([2, 2]), ceil_mode: A.int(1) }, 2);
  b.op('MaxPool', [x], { kernel_shape: A.ints([2, 2]), strides: A.ints([2, 2]), pads: A.ints([1, 1, 1, 1]) }, 2);
  b.one('MaxPool', [x], { kernel_shape: A.ints([2, 3]), auto_pad: A.string('SAME_LOWER'), strides: A.ints([2, 2]) });
  b.one('MaxPool', [x], { kernel_shape: A.ints([3, 3]), dilations: A.ints([2, 2]) });
  // ceil mode whose last window would start in the end padding (dropped)
  b.one('MaxPool', [x], { kernel_shape: A.ints([2, 2]), strides: A.ints([2, 2]), pads: A.ints([1, 1, 1, 1]), ceil_mode: A.int(1) });
  b.one('AveragePool', [x], { kernel_shape: A.ints([2, 2]), strides: A.ints([2, 2]), pads: A.ints([1, 1, 1, 1]), ceil_mode: A.int(1) });
  b.one('AveragePool', [x], { kernel_shape: A.ints([4, 4]), strides: A.ints([3, 3]), ceil_mode: A.int(1), count_include_pad: A.int(1), pads: A.ints([1, 1, 1, 1]) });
  b.one('AveragePool', [x], { kernel_shape: A.ints([3, 3]), strides: A.ints([2, 2]), auto_pad: A.string('SAME_UPPER') });
  b.one('AveragePool', [x], { kernel_shape: A.ints([2, 2]), strides: A.ints([4, 4]), auto_pad: A.string('VALID'), ceil_mode: A.int(1) });
  const gap = b.one('GlobalAveragePool', [x]);
  b.one('GlobalMaxPool', [x]);
  // linear algebra
  const flat = b.one('Flatten', [x], { axis: A.int(2) });
  b.one('Flatten', [x], { axis: A.int(-1) });
  b.one('Flatten', [x], { axis: A.int(0) });
  b.one('Gemm', [flat, b.floats('gb', [5, 81]), b.floats('gc', [5])], { transB: A.int(1) });
  const flatT = b.one('Transpose', [flat]);
  b.one('Gemm', [flatT, b.floats('gb2', [81, 5])], { transA: A.int(1), alpha: A.float(0.5) });
  b.one('MatMul', [x, b.floats('mm', [9, 6])]);
  b.one('MatMul', [b.floats('mv', [9]), x]);
  b.one('MatMul', [x, b.floats('mv2', [9])]);
  b.one('MatMul', [b.floats('mb', [4, 1, 9]), x]);
  // element-wise
  const bias = b.floats('bias', [4, 1, 1]);
  const add = b.one('Add', [x, bias]);
  b.one('Sub', [b.floats('row', [9]), x]);
  b.one('Mul', [x, b.floats('sc', [])]);
  b.one('Div', [x, b.floats('col', [9, 1])]);
  const ab = b.one('Abs', [x]);
  b.one('Pow', [ab, b.floats('two', [1])]);
  const less = b.one('Less', [x, bias]);
  const greater = b.one('Greater', [x, b.floats('z', [1, 1, 9])]);
  b.one('GreaterOrEqual', [x, bias]);
  b.one('LessOrEqual', [x, bias]);
  b.one('Equal', [x, x]);
  b.one('And', [less, greater]);
  b.one('Or', [less, greater]);
  b.one('Not', [less]);
  b.one('Where', [less, x, b.floats('zero', [1, 9, 1])]);
  b.one('Max', [x, bias, b.floats('m3', [9, 1])]);
  b.one('Min', [x, bias]);
  for (const op of ['Sqrt', 'Neg', 'Sign', 'Exp', 'Log', 'Reciprocal', 'Relu', 'LeakyRelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Elu', 'Selu', 'Gelu', 'Softplus', 'Erf', 'Identity'])
    b.one(op, [op === 'Sqrt' || op === 'Log' ? ab : x]);
  b.one('Clip', [x, b.floats('lo', []), b.floats('hi', [], 4)]);
  b.op('Dropout', [x], {}, 2);
  const asInt = b.one('Cast', [x], { to: A.int(7) });
  b.one('Cast', [asInt], { to: A.int(9) });
  b.one('Cast', [x], { to: A.int(6) });
  b.one('BatchNormalization', [x, b.floats('bs', [4]), b.floats('bb', [4]), b.floats('bm', [4]), b.init('bv', f32([4], [1, 2, 3, 4]))]);
  b.one('Softmax', [x], { axis: A.int(1) });
  b.one('LogSoftmax', [x]);
  // reductions
  b.one('ReduceMean', [x], { axes: A.ints([2, 3]), keepdims: A.int(0) });
  b.one('ReduceSum', [x, b.ints('rax', [1])]);
  b.one('ReduceSum', [x]);
  b.one('ReduceMax', [x], { axes: A.ints([-1]) });
  const am = b.one('ArgMax', [x], { axis: A.int(1), keepdims: A.int(0) });
  b.one('ArgMax', [x], { axis: A.int(-1) });
  const depth = b.ints('depth', [5], []);
  const onoff = b.init('onoff', f32([2], [0, 1]));
  b.one('OneHot', [am, depth, onoff]);
  b.one('OneHot', [am, depth, onoff], { axis: A.int(1) });
  // shape manipulation
  b.one('Reshape', [x, b.ints('rs1', [0, -1, 9])]);
  b.one('Reshape', [x, b.ints('rs2', [-1])]);
  b.one('Reshape', [x, b.ints('rs3', [2, 2, 2, 81])], { allowzero: A.int(1) });
  const sq = b.one('Squeeze', [gap, b.ints('sqa', [2, 3])]);
  b.one('Squeeze', [gap]);
  b.one('Unsqueeze', [sq, b.ints('usa', [0, -1])]);
  b.one('Transpose', [x], { perm: A.ints([0, 2, 3, 1]) });
  b.one('Concat', [x, add], { axis: A.int(1) });
  b.one('Concat', [x, add, x], { axis: A.int(-1) });
  b.op('Split', [x, b.ints('spl', [3, 6])], { axis: A.int(2) }, 2);
  b.op('Split', [x], { axis: A.int(1) }, 2);
  b.one('Slice', [x, b.ints('ss', [1, -1]), b.ints('se', [100, -100]), b.ints('sa', [1, 3]), b.ints('st', [2, -3])]);
  b.one('Slice', [x, b.ints('ss2', [2]), b.ints('se2', [-2])]);
  b.one('Pad', [x, b.ints('pads', [0, 0, 1, 2, 0, 1, 0, 3])]);
  b.one('Pad', [x, b.ints('pads2', [0, 0, 2, 2, 0, 0, 1, 1])], { mode: A.string('reflect') });
  b.one('Expand', [bias, b.ints('exs', [2, 1, 3, 9])]);
  const shp = b.one('Shape', [x]);
  b.one('Shape', [x], { start: A.int(1), end: A.int(-1) });
  const n0 = b.one('Gather', [shp, b.ints('g0', [0], [])]);
  b.one('Gather', [x, b.ints('g1', [0, 2, 1, 1], [2, 2])], { axis: A.int(1) });
  b.one('Gather', [x, 'ids'], { axis: A.int(-1) });
  b.one('ConstantOfShape', [shp]);
  b.one('ConstantOfShape', [b.one('Unsqueeze', [n0, b.ints('u0', [0])])], { value: A.tensor(i64([1], [7])) });
  b.one('Range', [b.ints('r0', [0], []), b.ints('r1', [10], []), b.ints('r2', [3], [])]);
  b.one('Range', [b.init('rf0', f32([], [1])), b.init('rf1', f32([], [0])), b.init('rf2', f32([], [-0.3]))]);
  b.one('ScatterElements', [x, b.ints('sci', new Array(18).fill(0), [1, 2, 3, 3]), b.floats('scu', [1, 2, 3, 3])], { axis: A.int(2) });
  b.one('Tile', [x, b.ints('reps', [1, 2, 1, 3])]);
  return { g: b.graph(), feeds: { x: feed([2, 4, 9, 9]), ids: new ort.Tensor('int64', BigInt64Array.from([0, 8, 3, 1, 2, 7], BigInt), [2, 3]) } };
}

describe('inferShapes op by op', () => {
  it('matches onnxruntime on a graph using every supported op family', async () => {
    const { g, feeds } = buildZoo();
    const checked = await checkAgainstOrt(g, 2, feeds);
    assert.ok(checked >= 100, `checked ${checked} tensors`);
  });

  it('gives dims for hand-checked cases', () => {
    const b = new Builder([{ name: 'x', dtype: 'float32', shape: [1, 3, 10, 10] }]);
    const c = b.one('Conv', ['x', b.floats('w', [6, 3, 3, 3])], { strides: A.ints([2, 2]), pads: A.ints([1, 1, 1, 1]) });
    const p = b.op('MaxPool', [c], { kernel_shape: A.ints([2, 2]), strides: A.ints([2, 2]), ceil_mode: A.int(1) }, 2);
    const infos = inferShapes(b.graph());
    assert.deepEqual(infos.get(c), { dtype: 'float32', dims: [1, 6, 5, 5] });
    assert.deepEqual(infos.get(p[0]), { dtype: 'float32', dims: [1, 6, 3, 3] });
    assert.deepEqual(infos.get(p[1]), { dtype: 'int64', dims: [1, 6, 3, 3] });
    assert.deepEqual(infos.get('w')!.dims, [6, 3, 3, 3]);
  });

  it('rejects symbolic dims other than the batch axis, naming the input', () => {
    const b = new Builder([{ name: 'image', dtype: 'float32', shape: ['N', 3, 'height', 'width'] }]);
    b.one('Relu', ['image']);
    assert.throws(() => inferShapes(b.graph()), (e: unknown) => e instanceof ModelError && /^built\.onnx: .*'image'.*'height'/.test(e.message));
  });

  it('rejects unknown ops naming the node, its op type and the model file', () => {
    const b = new Builder([{ name: 'x', dtype: 'float32', shape: [1, 3] }]);
    b.one('Relu', [b.one('FancyNewOp', ['x'])]);
    assert.throws(() => inferShapes(b.graph()), (e: unknown) => e instanceof ModelError && /^built\.onnx: node 'fancynewop_0' \(FancyNewOp\)/.test(e.message));
  });

  it('rejects inconsistent shapes with the node named', () => {
    const b = new Builder([{ name: 'x', dtype: 'float32', shape: [1, 3, 8, 8] }]);
    b.one('Add', ['x', b.floats('v', [4, 1, 1])]);
    b.one('Conv', ['x', b.floats('w', [2, 4, 3, 3])]);
    assert.throws(() => inferShapes(b.graph()), (e: unknown) => e instanceof ModelError && /add_0.*broadcast/.test(e.message));
  });
});

// ---------- constant folding ----------

async function runGraph(g: Graph, feeds: Record<string, ort.Tensor>): Promise<ort.Tensor[]> {
  const s = await ort.InferenceSession.create(exportOnnx(g));
  const res = await s.run(feeds);
  return g.outputs.map((o) => res[o.name]);
}

function sameOutputs(a: ort.Tensor[], b: ort.Tensor[]): void {
  assert.equal(a.length, b.length);
  a.forEach((t, i) => {
    assert.deepEqual(t.dims, b[i].dims);
    assert.deepEqual([...(t.data as Float32Array)], [...(b[i].data as Float32Array)]);
  });
}

/** x -> Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), Unsqueeze(Mul(Gather(Shape(x), 1), Gather(Shape(x), 2))), [-1])). */
function reshapeChain(batch: Dim): { g: Graph; reshape: Node; mul: string; m: string } {
  const b = new Builder([{ name: 'x', dtype: 'float32', shape: [batch, 3, 4, 5] }]);
  const s = b.one('Shape', ['x']);
  const n = b.one('Unsqueeze', [b.one('Gather', [s, b.ints('i0', [0], [])]), b.ints('ax', [0])]);
  const mul = b.one('Mul', [b.one('Gather', [s, b.ints('i1', [1], [])]), b.one('Gather', [s, b.ints('i2', [2], [])])]);
  const m = b.one('Unsqueeze', [mul, 'ax']);
  const shape = b.one('Concat', [n, m, b.ints('rest', [-1])], { axis: A.int(0) });
  const y = b.one('Reshape', ['x', shape]);
  const g = b.graph([y]);
  return { g, reshape: g.nodes[g.nodes.length - 1], mul, m };
}

describe('foldConstants', () => {
  it('turns Shape->Gather->Unsqueeze->Concat into a constant Reshape shape', async () => {
    const { g, reshape } = reshapeChain(2);
    const feeds = { x: feed([2, 3, 4, 5]) };
    const before = await runGraph(g, feeds);
    foldConstants(g);
    assert.deepEqual(g.nodes.map((n) => n.opType), ['Reshape']);
    assert.equal(g.nodes[0], reshape);
    const shape = g.initializers.get(reshape.inputs[1]);
    assert.ok(shape, 'the shape is an initializer');
    assert.equal(shape.dtype, 'int64');
    assert.deepEqual(toNumbers(shape), [2, 12, -1]);
    assert.deepEqual([...g.initializers.keys()], [reshape.inputs[1]]);
    sameOutputs(await runGraph(g, feeds), before);
  });

  it('does not fold values that depend on a symbolic batch size', async () => {
    const { g, mul, m } = reshapeChain('N');
    foldConstants(g);
    assert.deepEqual(g.nodes.map((n) => n.opType), ['Shape', 'Gather', 'Unsqueeze', 'Concat', 'Reshape']);
    assert.deepEqual(toNumbers(g.initializers.get(m)!), [12], 'channels*height is static');
    assert.ok(!g.nodes.some((n) => n.outputs.includes(mul) || n.outputs.includes(m)));
    const [y] = await runGraph(g, { x: feed([3, 3, 4, 5]) });
    assert.deepEqual(y.dims, [3, 12, 5]);
  });

  it('removes Identity on initializers, folds Pad arithmetic and weight Transposes, leaves real compute', async () => {
    const b = new Builder([{ name: 'x', dtype: 'float32', shape: [1, 2, 4, 4] }]);
    const w = b.one('Identity', [b.floats('w', [3, 2, 3, 3])]);
    const zeros = b.one('ConstantOfShape', [b.ints('two', [2])], { value: A.tensor(i64([1], [0])) });
    const one = b.one('Cast', [b.one('Div', [b.ints('seven', [7], []), b.ints('five', [5], [])])], { to: A.int(7) });
    const hw = b.one('Concat', [b.one('Expand', [b.one('Unsqueeze', [one, b.ints('a0', [0])]), b.ints('sh', [2])])], { axis: A.int(0) });
    const pads = b.one('Concat', [zeros, hw, zeros, hw], { axis: A.int(0) });
    const padded = b.one('Pad', ['x', b.one('Slice', [pads, b.ints('s0', [0]), b.ints('s1', [8])])]);
    const conv = b.one('Conv', [padded, w]);
    const wt = b.one('Transpose', [b.floats('m', [48, 5])]);
    const bigConv = b.one('Conv', [b.floats('img', [1, 2, 6, 6]), w]);
    const y = b.one('MatMul', [b.one('Flatten', [b.one('Add', [conv, bigConv])]), b.one('Transpose', [wt])]);
    const g = b.graph([y]);
    const feeds = { x: feed([1, 2, 4, 4]) };
    const before = await runGraph(g, feeds);
    foldConstants(g);
    assert.deepEqual(g.nodes.map((n) => n.opType).sort(), ['Add', 'Conv', 'Conv', 'Flatten', 'MatMul', 'Pad']);
    const pad = g.nodes.find((n) => n.opType === 'Pad')!;
    assert.deepEqual(toNumbers(g.initializers.get(pad.inputs[1])!), [0, 0, 1, 1, 0, 0, 1, 1]);
    for (const c of g.nodes.filter((n) => n.opType === 'Conv')) assert.ok(g.initializers.has(c.inputs[1]));
    assert.ok(g.nodes.some((n) => n.opType === 'Conv' && n.outputs[0] === bigConv), 'Conv on constants is not folded');
    assert.ok(!g.initializers.has(wt));
    sameOutputs(await runGraph(g, feeds), before);
  });

  it('removes the exporter Identity on an initializer in shapes-resnet/model-bn.onnx, logits unchanged', async () => {
    const file = path.join(FIXTURES, 'shapes-resnet/model-bn.onnx');
    const g = importOnnx(fs.readFileSync(file), file);
    const identity = g.nodes.find((n) => n.opType === 'Identity');
    assert.ok(identity, 'the fixture has an Identity');
    const x = readNpyF32(path.join(FIXTURES, 'shapes-resnet/inputs/sample0.npy'));
    const feeds = { input: new ort.Tensor('float32', x.data, x.dims) };
    const before = await runGraph(g, feeds);
    const count = g.nodes.length;
    foldConstants(g);
    assert.equal(g.nodes.length, count - 1);
    assert.ok(!g.nodes.some((n) => n.opType === 'Identity'));
    assert.ok(g.initializers.has(identity.outputs[0]));
    sameOutputs(await runGraph(g, feeds), before);
  });

  it('folds window-count and padding arithmetic (Mod, Sub, Max, Tile, Less, Not, Pad of constants)', async () => {
    // pad H and W up to a multiple of 4, as window attention does: pad = (4 - H % 4) % 4
    const b = new Builder([{ name: 'x', dtype: 'float32', shape: [1, 2, 5, 7] }]);
    const s = b.one('Shape', ['x']);
    const hw = b.one('Slice', [s, b.ints('s2', [2]), b.ints('s4', [4])]);
    const four = b.ints('four', [4], []);
    const pad = b.one('Mod', [b.one('Sub', [four, b.one('Mod', [hw, four])]), four]);
    const kept = b.one('Max', [pad, b.ints('zero', [0], [])]);
    const ok = b.one('Not', [b.one('Less', [kept, b.ints('zero2', [0], [])])]);
    const used = b.one('Where', [ok, kept, b.ints('zeros2', [0, 0])]);
    const zeros = b.one('Tile', [b.ints('z1', [0]), b.ints('reps', [4])]);
    const pads = b.one('Concat', [b.one('Slice', [zeros, b.ints('a0', [0]), b.ints('a2', [2])]), b.ints('zz', [0, 0]), b.one('Slice', [zeros, b.ints('b0', [0]), b.ints('b2', [2])]), used], { axis: A.int(0) });
    const padded = b.one('Pad', [b.floats('c', [1, 1, 1, 1]), b.ints('cp', [0, 0, 1, 1, 0, 0, 0, 0])]);
    const y = b.one('Add', [b.one('Pad', ['x', pads]), b.one('ReduceSum', [padded], { keepdims: A.int(1) })]);
    const g = b.graph([y]);
    const feeds = { x: feed([1, 2, 5, 7]) };
    const before = await runGraph(g, feeds);
    foldConstants(g);
    assert.deepEqual(g.nodes.map((n) => n.opType), ['Pad', 'Add']);
    assert.deepEqual(toNumbers(g.initializers.get(g.nodes[0].inputs[1])!), [0, 0, 0, 0, 0, 0, 3, 1]);
    sameOutputs(await runGraph(g, feeds), before);
    assert.deepEqual(before[0].dims, [1, 2, 8, 8]);
  });

  it('folds Range, Equal and Where used for shape arithmetic', async () => {
    const b = new Builder([{ name: 'x', dtype: 'float32', shape: [2, 6] }]);
    const r = b.one('Range', [b.ints('r0', [0], []), b.ints('r1', [2], []), b.ints('r2', [1], [])]);
    const eq = b.one('Equal', [r, b.ints('zero', [0], [])]);
    const shape = b.one('Where', [eq, b.ints('minus', [-1]), b.ints('three', [3])]);
    const y = b.one('Reshape', ['x', shape]);
    const g = b.graph([y]);
    const before = await runGraph(g, { x: feed([2, 6]) });
    foldConstants(g);
    assert.equal(g.nodes.length, 1);
    assert.deepEqual(toNumbers(g.initializers.get(g.nodes[0].inputs[1])!), [-1, 3]);
    sameOutputs(await runGraph(g, { x: feed([2, 6]) }), before);
    assert.deepEqual(before[0].dims, [4, 3]);
  });

  it('folds ScatterND on constants (a Swin attention mask built by slice assignments)', async () => {
    // mask = zeros(4, 4); mask[1] = row; mask[-1, 2] = 7  (an index pair addresses one element)
    const b = new Builder([{ name: 'x', dtype: 'float32', shape: [4, 4] }]);
    const zeros = b.one('ConstantOfShape', [b.ints('hw', [4, 4])], { value: A.tensor(f32([1], [0])) });
    const rows = b.one('ScatterND', [zeros, b.ints('rows', [1], [1, 1]), b.floats('row', [1, 4])]);
    const mask = b.one('ScatterND', [rows, b.ints('cell', [-1, 2], [1, 2]), b.init('seven', f32([1], [7]))]);
    const y = b.one('Add', ['x', mask]);
    const g = b.graph([y]);
    const before = await runGraph(g, { x: feed([4, 4]) });
    foldConstants(g);
    assert.deepEqual(g.nodes.map((n) => n.opType), ['Add']);
    const folded = toNumbers(g.initializers.get(g.nodes[0].inputs[1])!);
    assert.equal(folded[3 * 4 + 2], 7);
    assert.deepEqual(folded.slice(0, 4), [0, 0, 0, 0]);
    sameOutputs(await runGraph(g, { x: feed([4, 4]) }), before);
  });
});
