import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Long from 'long';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { importOnnx, exportOnnx, exportOnnxSplit } from '../../src/engine/import/onnx';
import { Graph, ModelError, toNumbers } from '../../src/engine/graph/graph';
import { REFERENCE_DIR, REFERENCE_MODELS, readNpyF32 } from '../helpers';

const FIXTURES = REFERENCE_DIR;
const MODELS = REFERENCE_MODELS;

// ---------- helpers ----------

async function run(model: Uint8Array | string, feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.OnnxValueMapType> {
  const s = typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model);
  return s.run(feeds);
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel = 1e-5): void {
  assert.equal(actual.length, expected.length);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; i++)
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= rel * Math.max(scale, 1e-30),
      `element ${i}: ${actual[i]} vs ${expected[i]}`,
    );
}

const L = (v: number): Long => Long.fromNumber(v);

interface ModelSpec {
  opset?: number;
  nodes: onnx.INodeProto[];
  inputs: [string, number, (number | string)[]][];
  outputs: [string, number][];
  inits?: onnx.ITensorProto[];
  domain?: string;
}

function vi(name: string, elemType: number, dims?: (number | string)[]): onnx.IValueInfoProto {
  const shape = dims ? { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: L(d) } : { dimParam: d })) } : undefined;
  return { name, type: { tensorType: { elemType, shape } } };
}

function buildModel(s: ModelSpec): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: L(8),
    opsetImport: [{ domain: s.domain ?? '', version: L(s.opset ?? 13) }],
    graph: {
      name: 't',
      node: s.nodes,
      input: s.inputs.map(([n, t, d]) => vi(n, t, d)),
      output: s.outputs.map(([n, t]) => vi(n, t)),
      initializer: s.inits ?? [],
    },
  }).finish();
}

const DT = onnx.TensorProto.DataType;
const AT = onnx.AttributeProto.AttributeType;
const ints = (name: string, v: number[]): onnx.IAttributeProto => ({ name, type: AT.INTS, ints: v.map(L) });
const int = (name: string, v: number): onnx.IAttributeProto => ({ name, type: AT.INT, i: L(v) });
const float = (name: string, v: number): onnx.IAttributeProto => ({ name, type: AT.FLOAT, f: v });
const node = (op: string, input: string[], output: string[], attribute: onnx.IAttributeProto[] = [], name?: string): onnx.INodeProto => ({
  opType: op, input, output, attribute, name: name ?? output[0],
});

function f32(dims: number[], data: number[]): ort.Tensor {
  return new ort.Tensor('float32', Float32Array.from(data), dims);
}

function ramp(n: number, scale = 0.1, offset = 0): number[] {
  return Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + offset) * scale * (i + 1));
}

function throwsModelError(f: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof ModelError, `expected ModelError, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

/** Import, export and run both the original bytes and the round-tripped model on the same feeds. */
async function compareRoundTrip(bytes: Uint8Array, feeds: Record<string, ort.Tensor>, rel = 1e-5): Promise<Graph> {
  const g = importOnnx(bytes, 'test.onnx');
  const expected = await run(bytes, feeds);
  const actual = await run(exportOnnx(g), feeds);
  for (const [k, v] of Object.entries(expected)) {
    assert.deepEqual(actual[k].dims, v.dims, `dims of ${k}`);
    assertClose(actual[k].data as Float32Array, v.data as Float32Array, rel);
  }
  return g;
}

// ---------- fixture models ----------

describe('importOnnx/exportOnnx on the fixture models', () => {
  for (const m of MODELS) {
    it(`round-trips ${m} through onnxruntime with the same logits`, async () => {
      const file = path.join(FIXTURES, m);
      const bytes = fs.readFileSync(file);
      const g = importOnnx(bytes, file);
      assert.equal(g.layout, 'NCHW');
      assert.equal(g.source, file);
      assert.deepEqual(g.inputs.map((i) => i.name), ['input']);
      assert.ok(!g.initializers.has('input'));
      const proto = onnx.ModelProto.decode(bytes);
      assert.equal(g.nodes.length, proto.graph!.node!.length);
      const x = readNpyF32(path.join(FIXTURES, m.split('/')[0], 'inputs/sample0.npy'));
      const feeds = { input: new ort.Tensor('float32', x.data, x.dims) };
      const want = (await run(file, feeds)).logits.data as Float32Array;
      const got = (await run(exportOnnx(g), feeds)).logits.data as Float32Array;
      assert.equal(got.length, want.length);
      assertClose(got, want, 1e-5);
    });
  }

  it('keeps a symbolic batch dimension through import and export', async () => {
    const file = path.join(FIXTURES, 'shapes-resnet/model-dynbatch.onnx');
    const g = importOnnx(fs.readFileSync(file), file);
    assert.deepEqual(g.inputs[0].shape, ['batch', 3, 64, 64]);
    assert.deepEqual(g.outputs[0].shape, ['batch', 4]);
    const out = onnx.ModelProto.decode(exportOnnx(g));
    assert.equal(out.graph!.input![0].type!.tensorType!.shape!.dim![0].dimParam, 'batch');
    const x = readNpyF32(path.join(FIXTURES, 'shapes-resnet/inputs/sample0.npy'));
    const two = new Float32Array(x.data.length * 2);
    two.set(x.data);
    two.set(x.data, x.data.length);
    const res = await run(exportOnnx(g), { input: new ort.Tensor('float32', two, [2, 3, 64, 64]) });
    assert.deepEqual(res.logits.dims, [2, 4]);
    const l = res.logits.data as Float32Array;
    assertClose(l.slice(4), l.slice(0, 4), 1e-6);
  });

  it('writes ir_version 8, default-domain opset 17 and raw little-endian initializers', () => {
    const file = path.join(FIXTURES, 'digits-cnn/model.onnx');
    const g = importOnnx(fs.readFileSync(file), file);
    const m = onnx.ModelProto.decode(exportOnnx(g));
    assert.equal(Number(m.irVersion), 8);
    assert.deepEqual(m.opsetImport.map((o) => [o.domain, Number(o.version)]), [['', 17]]);
    for (const t of m.graph!.initializer!) {
      assert.ok(t.rawData && t.rawData.length > 0, `${t.name} has raw data`);
      assert.equal(t.floatData!.length, 0);
    }
    const w = m.graph!.initializer!.find((t) => t.name === 'features.0.weight')!;
    const orig = g.initializers.get('features.0.weight')!.data as Float32Array;
    const view = new DataView(w.rawData!.buffer, w.rawData!.byteOffset, w.rawData!.byteLength);
    assert.equal(view.getFloat32(4 * 5, true), orig[5]);
  });

  it('exports large initializers as in-memory external data: views of the weights, same logits on onnxruntime', async () => {
    const file = path.join(FIXTURES, 'shapes-resnet/model.onnx');
    const g = importOnnx(fs.readFileSync(file), file);
    const minBytes = 4096;
    const { model, files } = exportOnnxSplit(g, minBytes);
    const big = [...g.initializers].filter(([, t]) => t.data.byteLength >= minBytes);
    assert.ok(big.length > 3, 'the model has large weights');
    assert.equal(files.length, big.length);
    for (const [i, [, t]] of big.entries()) {
      assert.equal(files[i].data.buffer, t.data.buffer, 'a view, not a copy');
      assert.equal(files[i].data.byteLength, t.data.byteLength);
    }
    const proto = onnx.ModelProto.decode(model);
    const ext = proto.graph!.initializer!.filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
    assert.deepEqual(ext.map((t) => t.name), big.map(([k]) => k));
    const weightBytes = big.reduce((a, [, t]) => a + t.data.byteLength, 0);
    assert.ok(model.byteLength < weightBytes / 10, `model proto ${model.byteLength} B holds no large weights (${weightBytes} B)`);
    const x = readNpyF32(path.join(FIXTURES, 'shapes-resnet/inputs/sample0.npy'));
    const feeds = { input: new ort.Tensor('float32', x.data, x.dims) };
    const want = (await run(exportOnnx(g), feeds)).logits.data as Float32Array;
    const s = await ort.InferenceSession.create(model, { externalData: files });
    try {
      assert.deepEqual(Array.from((await s.run(feeds)).logits.data as Float32Array), Array.from(want));
    } finally {
      await s.release();
    }
  });
});

// ---------- tensors ----------

describe('importOnnx tensors', () => {
  it('converts float16 (raw and int32_data), float64, int8, bool and int64 (raw and int64_data) initializers', () => {
    const h = [0x3c00, 0xc000, 0x3555, 0x0001, 0x7c00]; // 1, -2, 0.33325, smallest subnormal, +inf
    const raw16 = new Uint8Array(new Uint16Array(h).buffer);
    const i64raw = new Uint8Array(BigInt64Array.of(-3n, 1n << 40n).buffer);
    const bytes = buildModel({
      nodes: [node('Identity', ['x'], ['y'])],
      inputs: [['x', DT.FLOAT, [1]]],
      outputs: [['y', DT.FLOAT]],
      inits: [
        { name: 'h_raw', dataType: DT.FLOAT16, dims: [L(5)], rawData: raw16 },
        { name: 'h_i32', dataType: DT.FLOAT16, dims: [L(5)], int32Data: h },
        { name: 'd', dataType: DT.DOUBLE, dims: [L(2)], doubleData: [0.1, -1e300] },
        { name: 'i8', dataType: DT.INT8, dims: [L(3)], rawData: Uint8Array.of(0xff, 0x7f, 0x80) },
        { name: 'u8', dataType: DT.UINT8, dims: [L(2)], int32Data: [200, 3] },
        { name: 'b', dataType: DT.BOOL, dims: [L(3)], rawData: Uint8Array.of(1, 0, 1) },
        { name: 'l_raw', dataType: DT.INT64, dims: [L(2)], rawData: i64raw },
        { name: 'l_typed', dataType: DT.INT64, dims: [L(1), L(2)], int64Data: [L(-7), Long.fromString('1099511627776')] },
        { name: 'f_typed', dataType: DT.FLOAT, dims: [L(2)], floatData: [1.5, -2.25] },
        { name: 'i32', dataType: DT.INT32, dims: [], int32Data: [-9] },
      ],
    });
    const g = importOnnx(bytes, 'm.onnx');
    const expected16 = [1, -2, 0.333251953125, 2 ** -24, Infinity];
    for (const k of ['h_raw', 'h_i32']) {
      const t = g.initializers.get(k)!;
      assert.equal(t.dtype, 'float32');
      assert.deepEqual([...(t.data as Float32Array)], expected16);
    }
    const d = g.initializers.get('d')!;
    assert.equal(d.dtype, 'float32');
    assert.equal(d.data[0], Math.fround(0.1));
    assert.equal(d.data[1], -Infinity);
    assert.deepEqual(toNumbers(g.initializers.get('i8')!), [-1, 127, -128]);
    assert.equal(g.initializers.get('u8')!.dtype, 'uint8');
    assert.deepEqual(toNumbers(g.initializers.get('u8')!), [200, 3]);
    assert.equal(g.initializers.get('b')!.dtype, 'bool');
    assert.deepEqual(toNumbers(g.initializers.get('b')!), [1, 0, 1]);
    assert.deepEqual([...(g.initializers.get('l_raw')!.data as BigInt64Array)], [-3n, 1n << 40n]);
    const lt = g.initializers.get('l_typed')!;
    assert.deepEqual(lt.dims, [1, 2]);
    assert.deepEqual([...(lt.data as BigInt64Array)], [-7n, 1n << 40n]);
    assert.deepEqual(toNumbers(g.initializers.get('f_typed')!), [1.5, -2.25]);
    const i32 = g.initializers.get('i32')!;
    assert.equal(i32.dtype, 'int32');
    assert.deepEqual(i32.dims, []);
    assert.deepEqual(toNumbers(i32), [-9]);
  });

  it('runs a float16-weight model as float32 with the same result', async () => {
    const w = [0.5, -1.25, 2, 0.125];
    const halfBits = [0x3800, 0xbd00, 0x4000, 0x3000];
    const bytes = buildModel({
      nodes: [node('Mul', ['x', 'w'], ['y'])],
      inputs: [['x', DT.FLOAT, [1, 4]]],
      outputs: [['y', DT.FLOAT]],
      inits: [{ name: 'w', dataType: DT.FLOAT16, dims: [L(4)], rawData: new Uint8Array(new Uint16Array(halfBits).buffer) }],
    });
    const g = importOnnx(bytes, 'h.onnx');
    const res = await run(exportOnnx(g), { x: f32([1, 4], [1, 2, 3, 4]) });
    assert.deepEqual([...(res.y.data as Float32Array)], w.map((v, i) => v * (i + 1)));
  });

  it('turns Constant nodes (value, value_float, value_floats, value_int, value_ints) into initializers', async () => {
    const tensor: onnx.ITensorProto = { dataType: DT.FLOAT, dims: [L(3)], floatData: [1, 2, 3] };
    const bytes = buildModel({
      nodes: [
        node('Constant', [], ['c_t'], [{ name: 'value', type: AT.TENSOR, t: tensor }]),
        node('Constant', [], ['c_f'], [float('value_float', 0.5)]),
        node('Constant', [], ['c_fs'], [{ name: 'value_floats', type: AT.FLOATS, floats: [1, 1, 2] }]),
        node('Constant', [], ['c_i'], [int('value_int', 7)]),
        node('Constant', [], ['shape'], [ints('value_ints', [3, 1])]),
        node('Add', ['x', 'c_t'], ['a']),
        node('Mul', ['a', 'c_f'], ['b']),
        node('Mul', ['b', 'c_fs'], ['c']),
        node('Reshape', ['c', 'shape'], ['y']),
      ],
      inputs: [['x', DT.FLOAT, [3]]],
      outputs: [['y', DT.FLOAT]],
    });
    const g = importOnnx(bytes, 'c.onnx');
    assert.ok(g.nodes.every((n) => n.opType !== 'Constant'));
    assert.equal(g.nodes.length, 4);
    assert.deepEqual(toNumbers(g.initializers.get('c_t')!), [1, 2, 3]);
    assert.deepEqual(g.initializers.get('c_f')!.dims, []);
    assert.equal(g.initializers.get('c_i')!.dtype, 'int64');
    assert.deepEqual(g.initializers.get('c_i')!.dims, []);
    assert.equal(g.initializers.get('shape')!.dtype, 'int64');
    assert.deepEqual(toNumbers(g.initializers.get('shape')!), [3, 1]);
    const res = await run(exportOnnx(g), { x: f32([3], [1, 1, 1]) });
    assert.deepEqual(res.y.dims, [3, 1]);
    assert.deepEqual([...(res.y.data as Float32Array)], [1, 1.5, 4]);
  });

  it('drops initializers that are also listed as graph inputs, and names unnamed nodes', () => {
    const bytes = buildModel({
      nodes: [node('Add', ['x', 'w'], ['a'], [], ''), node('Relu', ['a'], ['y'], [], ''), node('Relu', ['y'], ['z'], [], 'Relu_1')],
      inputs: [['x', DT.FLOAT, [2]], ['w', DT.FLOAT, [2]]],
      outputs: [['z', DT.FLOAT]],
      inits: [{ name: 'w', dataType: DT.FLOAT, dims: [L(2)], floatData: [1, 2] }],
    });
    const g = importOnnx(bytes, 'n.onnx');
    assert.deepEqual(g.inputs.map((i) => i.name), ['x']);
    assert.deepEqual(g.nodes.map((n) => n.name), ['Add_0', 'Relu_1_1', 'Relu_1']);
    const again = importOnnx(bytes, 'n.onnx');
    assert.deepEqual(again.nodes.map((n) => n.name), g.nodes.map((n) => n.name));
  });

  it('keeps missing dims as strings', () => {
    const bytes = onnx.ModelProto.encode({
      irVersion: L(8),
      opsetImport: [{ domain: '', version: L(13) }],
      graph: {
        node: [node('Relu', ['x'], ['y'])],
        input: [{ name: 'x', type: { tensorType: { elemType: DT.FLOAT, shape: { dim: [{}, { dimValue: L(3) }] } } } }],
        output: [vi('y', DT.FLOAT)],
      },
    }).finish();
    const g = importOnnx(bytes, 'd.onnx');
    assert.equal(typeof g.inputs[0].shape[0], 'string');
    assert.equal(g.inputs[0].shape[1], 3);
  });
});

// ---------- errors ----------

describe('importOnnx errors', () => {
  it('rejects external data naming the file and the tensor', () => {
    const bytes = buildModel({
      nodes: [node('Add', ['x', 'big_weight'], ['y'])],
      inputs: [['x', DT.FLOAT, [2]]],
      outputs: [['y', DT.FLOAT]],
      inits: [{
        name: 'big_weight', dataType: DT.FLOAT, dims: [L(2)], dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [{ key: 'location', value: 'weights.bin' }, { key: 'offset', value: '0' }],
      }],
    });
    throwsModelError(() => importOnnx(bytes, '/models/m.onnx'), /^\/models\/m\.onnx: /, /big_weight/, /weights\.bin/, /external data files are not supported/);
  });

  it('rejects opsets outside 9..21 and nodes from other domains', () => {
    const mk = (opset: number): Uint8Array =>
      buildModel({ opset, nodes: [node('Relu', ['x'], ['y'])], inputs: [['x', DT.FLOAT, [2]]], outputs: [['y', DT.FLOAT]] });
    throwsModelError(() => importOnnx(mk(8), 'a.onnx'), /^a\.onnx: /, /opset 8/);
    throwsModelError(() => importOnnx(mk(22), 'a.onnx'), /^a\.onnx: /, /opset 22/);
    assert.equal(importOnnx(mk(9), 'a.onnx').nodes.length, 1);
    assert.equal(importOnnx(mk(21), 'a.onnx').nodes.length, 1);
    const ms = onnx.ModelProto.encode({
      irVersion: L(8),
      opsetImport: [{ domain: '', version: L(13) }, { domain: 'com.microsoft', version: L(1) }],
      graph: {
        node: [{ ...node('FusedConv', ['x'], ['y'], [], 'fc1'), domain: 'com.microsoft' }],
        input: [vi('x', DT.FLOAT, [2])],
        output: [vi('y', DT.FLOAT)],
      },
    }).finish();
    throwsModelError(() => importOnnx(ms, 'b.onnx'), /^b\.onnx: /, /'fc1'/, /FusedConv/, /com\.microsoft/);
  });

  it('reports files that are not ONNX models', () => {
    const png = fs.readFileSync(path.join(FIXTURES, 'digits-cnn/inputs/sample0.png'));
    throwsModelError(() => importOnnx(png, 'x.png'), /^x\.png: not an ONNX model \(/);
    throwsModelError(() => importOnnx(new TextEncoder().encode('hello, this is not a model\n'), 'x.txt'), /^x\.txt: not an ONNX model \(/);
    throwsModelError(() => importOnnx(new Uint8Array(0), 'empty.onnx'), /^empty\.onnx: not an ONNX model \(.*empty/);
    throwsModelError(() => importOnnx(new TextEncoder().encode('{"format": "layers-model"}'), 'model.json'), /^model\.json: not an ONNX model/);
  });

  it('reports truncated protobufs', () => {
    const file = path.join(FIXTURES, 'digits-cnn/model.onnx');
    const bytes = fs.readFileSync(file);
    for (const frac of [0.01, 0.3, 0.5, 0.9, 0.999]) {
      const cut = bytes.subarray(0, Math.floor(bytes.length * frac));
      throwsModelError(() => importOnnx(cut, file), new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: truncated or corrupt ONNX protobuf \\(`));
    }
  });
});

// ---------- opset normalisation ----------

describe('importOnnx normalises to opset 17', () => {
  it('moves opset-9 attributes (Pad, Clip, Slice, Squeeze, Unsqueeze, ReduceSum, Split) to inputs, same results', async () => {
    const bytes = buildModel({
      opset: 9,
      nodes: [
        node('Pad', ['x'], ['p'], [ints('pads', [0, 0, 1, 2, 0, 0, 2, 1]), float('value', 0.5)]),
        node('Clip', ['p'], ['c'], [float('min', -0.2), float('max', 0.3)]),
        node('Slice', ['c'], ['s'], [ints('starts', [1, -6]), ints('ends', [100, -1]), ints('axes', [2, 3])]),
        node('ReduceSum', ['s'], ['r'], [ints('axes', [1]), int('keepdims', 1)]),
        node('Squeeze', ['r'], ['q'], [ints('axes', [1])]),
        node('Unsqueeze', ['q'], ['u'], [ints('axes', [0])]),
        node('Split', ['u'], ['y1', 'y2'], [int('axis', 2), ints('split', [2, 4])]),
        node('Dropout', ['y2'], ['y3'], [float('ratio', 0.3)]),
      ],
      inputs: [['x', DT.FLOAT, [1, 3, 4, 5]]],
      outputs: [['y1', DT.FLOAT], ['y3', DT.FLOAT]],
    });
    const g = await compareRoundTrip(bytes, { x: f32([1, 3, 4, 5], ramp(60)) });
    const byOp = (op: string) => g.nodes.find((n) => n.opType === op)!;
    assert.equal(byOp('Pad').inputs.length, 3);
    assert.deepEqual(toNumbers(g.initializers.get(byOp('Pad').inputs[1])!), [0, 0, 1, 2, 0, 0, 2, 1]);
    assert.deepEqual(byOp('Clip').attrs, {});
    assert.deepEqual(toNumbers(g.initializers.get(byOp('Slice').inputs[2])!), [100, -1]);
    for (const op of ['Squeeze', 'Unsqueeze', 'ReduceSum', 'Split']) {
      assert.equal(byOp(op).attrs.axes, undefined, op);
      assert.ok(g.initializers.has(byOp(op).inputs[1]), `${op} has a constant second input`);
    }
  });

  it('moves ReduceMean axes from an opset-18 input to the attribute', async () => {
    const bytes = buildModel({
      opset: 18,
      nodes: [node('ReduceMean', ['x', 'axes'], ['y'], [int('keepdims', 0)]), node('ReduceMax', ['x'], ['z'])],
      inputs: [['x', DT.FLOAT, [2, 3, 4]]],
      outputs: [['y', DT.FLOAT], ['z', DT.FLOAT]],
      inits: [{ name: 'axes', dataType: DT.INT64, dims: [L(2)], int64Data: [L(0), L(2)] }],
    });
    const g = await compareRoundTrip(bytes, { x: f32([2, 3, 4], ramp(24)) });
    assert.deepEqual(g.nodes[0].inputs, ['x']);
    assert.deepEqual(g.nodes[0].attrs.axes, { type: 'ints', value: [0, 2] });
  });

  it('rewrites a pre-13 Softmax over a non-last axis and keeps a last-axis one simple', async () => {
    const bytes = buildModel({
      opset: 11,
      nodes: [node('Softmax', ['x'], ['y'], [int('axis', 1)]), node('Flatten', ['x'], ['f']), node('LogSoftmax', ['f'], ['z'])],
      inputs: [['x', DT.FLOAT, [2, 3, 2, 2]]],
      outputs: [['y', DT.FLOAT], ['z', DT.FLOAT]],
    });
    const g = await compareRoundTrip(bytes, { x: f32([2, 3, 2, 2], ramp(24, 0.5)) });
    assert.deepEqual(g.nodes.find((n) => n.opType === 'LogSoftmax')!.attrs.axis, { type: 'int', value: -1 });
    assert.ok(g.nodes.some((n) => n.opType === 'Reshape'));
  });

  it('maps opset-10 Resize and Cast to float16', async () => {
    const bytes = buildModel({
      opset: 10,
      nodes: [
        node('Resize', ['x', 'scales'], ['r'], [{ name: 'mode', type: AT.STRING, s: new TextEncoder().encode('nearest') }]),
        node('Cast', ['r'], ['h'], [int('to', DT.FLOAT16)]),
        node('Cast', ['h'], ['y'], [int('to', DT.FLOAT)]),
      ],
      inputs: [['x', DT.FLOAT, [1, 1, 2, 3]]],
      outputs: [['y', DT.FLOAT]],
      inits: [{ name: 'scales', dataType: DT.FLOAT, dims: [L(4)], floatData: [1, 1, 2, 1.5] }],
    });
    const g = await compareRoundTrip(bytes, { x: f32([1, 1, 2, 3], [1, 2, 3, 4, 5, 6]) });
    assert.deepEqual(g.nodes[0].inputs, ['x', '', 'scales']);
  });

  it('exports opset-20 Gelu (erf and tanh forms) as opset-17 ops', async () => {
    const bytes = buildModel({
      opset: 20,
      nodes: [
        node('Gelu', ['x'], ['y']),
        node('Gelu', ['x'], ['z'], [{ name: 'approximate', type: AT.STRING, s: new TextEncoder().encode('tanh') }]),
      ],
      inputs: [['x', DT.FLOAT, [7]]],
      outputs: [['y', DT.FLOAT], ['z', DT.FLOAT]],
    });
    await compareRoundTrip(bytes, { x: f32([7], [-3, -1, -0.5, 0, 0.5, 1, 3]) }, 1e-6);
    const out = onnx.ModelProto.decode(exportOnnx(importOnnx(bytes, 'g.onnx')));
    assert.ok(out.graph!.node!.every((n) => n.opType !== 'Gelu'));
  });
});
