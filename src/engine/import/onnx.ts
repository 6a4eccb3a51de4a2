// ONNX <-> Graph. Import decodes a ModelProto, converts tensors to the engine's dtypes and
// normalises every node to its opset-17 form; export writes a Graph back as an opset-17 model.
import Long from 'long';
import { onnx } from 'onnx-proto';
import {
  A,
  Attr,
  DType,
  Dim,
  Graph,
  ModelError,
  Node,
  Tensor,
  TensorData,
  ValueInfo,
  i64,
  numel,
  toNumbers,
} from '../graph/graph';

export const EXPORT_OPSET = 17;
const MIN_OPSET = 9;
const MAX_OPSET = 21;

const DT = onnx.TensorProto.DataType;
const AT = onnx.AttributeProto.AttributeType;

// ---------- scalars from protobuf ----------

type IntLike = number | Long | { low: number; high: number; unsigned?: boolean };

function toNum(v: IntLike | null | undefined): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  return Long.fromBits(v.low, v.high, v.unsigned ?? false).toNumber();
}

function toBig(v: IntLike): bigint {
  if (typeof v === 'number') return BigInt(v);
  return BigInt.asIntN(64, (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0));
}

function toLong(v: number): Long {
  return Long.fromNumber(v);
}

const utf8 = new TextDecoder();
const str = (b: Uint8Array | null | undefined): string => (b ? utf8.decode(b) : '');

// ---------- dtypes ----------

/** ONNX element type -> engine dtype (narrow ints widen to int32, half/double to float32). */
const DTYPE_OF: Partial<Record<number, DType>> = {
  [DT.FLOAT]: 'float32',
  [DT.FLOAT16]: 'float32',
  [DT.BFLOAT16]: 'float32',
  [DT.DOUBLE]: 'float32',
  [DT.INT64]: 'int64',
  [DT.INT32]: 'int32',
  [DT.INT16]: 'int32',
  [DT.INT8]: 'int32',
  [DT.UINT16]: 'int32',
  [DT.UINT8]: 'uint8',
  [DT.BOOL]: 'bool',
};

const ONNX_TYPE_OF: Record<DType, number> = {
  float32: DT.FLOAT,
  float64: DT.DOUBLE,
  int64: DT.INT64,
  int32: DT.INT32,
  uint8: DT.UINT8,
  bool: DT.BOOL,
};

const TYPE_NAME: Record<number, string> = Object.fromEntries(
  Object.entries(DT).map(([k, v]) => [v as number, k.toLowerCase()]),
);

/** The engine dtype an ONNX element type (e.g. Cast's `to`) is computed in, if supported. */
export function dtypeFromOnnx(t: number): DType | undefined {
  return DTYPE_OF[t];
}

function dtypeOf(t: number, what: () => string): DType {
  const d = DTYPE_OF[t];
  if (!d) throw new ModelError(`${what()}: element type ${TYPE_NAME[t] ?? t} is not supported`);
  return d;
}

function half(bits: number): number {
  const s = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const bf16 = (() => {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  return (bits: number): number => {
    u[0] = (bits & 0xffff) << 16;
    return f[0];
  };
})();

/** Read element i of raw little-endian bytes, as number or bigint. */
type RawReader = (v: DataView, i: number) => number | bigint;

const RAW: Partial<Record<number, { size: number; read: RawReader }>> = {
  [DT.FLOAT]: { size: 4, read: (v, i) => v.getFloat32(i * 4, true) },
  [DT.DOUBLE]: { size: 8, read: (v, i) => v.getFloat64(i * 8, true) },
  [DT.FLOAT16]: { size: 2, read: (v, i) => half(v.getUint16(i * 2, true)) },
  [DT.BFLOAT16]: { size: 2, read: (v, i) => bf16(v.getUint16(i * 2, true)) },
  [DT.INT64]: { size: 8, read: (v, i) => v.getBigInt64(i * 8, true) },
  [DT.INT32]: { size: 4, read: (v, i) => v.getInt32(i * 4, true) },
  [DT.INT16]: { size: 2, read: (v, i) => v.getInt16(i * 2, true) },
  [DT.UINT16]: { size: 2, read: (v, i) => v.getUint16(i * 2, true) },
  [DT.INT8]: { size: 1, read: (v, i) => v.getInt8(i) },
  [DT.UINT8]: { size: 1, read: (v, i) => v.getUint8(i) },
  [DT.BOOL]: { size: 1, read: (v, i) => (v.getUint8(i) ? 1 : 0) },
};

export function allocData(dtype: DType, n: number): TensorData {
  switch (dtype) {
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'int64':
      return new BigInt64Array(n);
    case 'int32':
      return new Int32Array(n);
    default:
      return new Uint8Array(n);
  }
}

function fill(dst: TensorData, n: number, get: (i: number) => number | bigint): void {
  if (dst instanceof BigInt64Array) for (let i = 0; i < n; i++) dst[i] = BigInt(get(i));
  else for (let i = 0; i < n; i++) dst[i] = Number(get(i));
}

/** The typed field holding a tensor's values when it has no raw_data. */
function typedValues(t: onnx.ITensorProto): ((i: number) => number | bigint) | undefined {
  const dt = t.dataType ?? 0;
  if (t.floatData?.length) return (i) => t.floatData![i];
  if (t.doubleData?.length) return (i) => t.doubleData![i];
  if (t.int64Data?.length) return (i) => toBig(t.int64Data![i]);
  if (t.uint64Data?.length) return (i) => toBig(t.uint64Data![i]);
  if (t.int32Data?.length) {
    if (dt === DT.FLOAT16) return (i) => half(t.int32Data![i]);
    if (dt === DT.BFLOAT16) return (i) => bf16(t.int32Data![i]);
    return (i) => t.int32Data![i];
  }
  return undefined;
}

export function tensorFromProto(t: onnx.ITensorProto, what: string): Tensor {
  const name = t.name ?? '';
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const loc = (t.externalData ?? []).find((e) => e.key === 'location')?.value ?? '?';
    throw new ModelError(
      `${what}: tensor '${name}' keeps its data in the external file '${loc}'; external data files are not supported`,
    );
  }
  const dt = t.dataType ?? 0;
  const dtype = dtypeOf(dt, () => `${what}: tensor '${name}'`);
  const dims = (t.dims ?? []).map(toNum);
  const n = numel(dims);
  const data = allocData(dtype, n);
  const raw = t.rawData;
  if (raw && raw.length) {
    const spec = RAW[dt]!;
    if (raw.length !== n * spec.size)
      throw new ModelError(`${what}: tensor '${name}' has ${raw.length} bytes of data, expected ${n * spec.size}`);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    fill(data, n, (i) => spec.read(view, i));
  } else if (n > 0) {
    const get = typedValues(t);
    if (!get) throw new ModelError(`${what}: tensor '${name}' has no data`);
    fill(data, n, get);
  }
  return { dtype, dims, data };
}

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

export function tensorToProto(name: string, t: Tensor): onnx.ITensorProto {
  if (!LITTLE_ENDIAN) throw new ModelError('exporting ONNX needs a little-endian host');
  // a view, not a copy: encoding reads it once (large programs would otherwise hold every weight twice)
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return { name, dataType: ONNX_TYPE_OF[t.dtype], dims: t.dims.map(toLong), rawData: bytes };
}

// ---------- attributes ----------

type AttrReader = (a: onnx.IAttributeProto, where: string) => Attr;

const ATTR_READ: Partial<Record<number, AttrReader>> = {
  [AT.INT]: (a) => A.int(toNum(a.i)),
  [AT.FLOAT]: (a) => A.float(a.f ?? 0),
  [AT.STRING]: (a) => A.string(str(a.s)),
  [AT.INTS]: (a) => A.ints((a.ints ?? []).map(toNum)),
  [AT.FLOATS]: (a) => A.floats([...(a.floats ?? [])]),
  [AT.STRINGS]: (a) => ({ type: 'strings', value: (a.strings ?? []).map(str) }),
  [AT.TENSOR]: (a, where) => A.tensor(tensorFromProto(a.t ?? {}, where)),
};

/** Old writers leave `type` unset; guess it from the field that holds a value. */
function attrType(a: onnx.IAttributeProto): number {
  if (a.type) return a.type;
  if (a.t) return AT.TENSOR;
  if (a.g) return AT.GRAPH;
  if (a.ints?.length) return AT.INTS;
  if (a.floats?.length) return AT.FLOATS;
  if (a.strings?.length) return AT.STRINGS;
  if (a.s?.length) return AT.STRING;
  if (a.f) return AT.FLOAT;
  return AT.INT;
}

function readAttrs(n: onnx.INodeProto, where: string): Record<string, Attr> {
  const out: Record<string, Attr> = {};
  for (const a of n.attribute ?? []) {
    const name = a.name ?? '';
    const read = ATTR_READ[attrType(a)];
    if (!read) throw new ModelError(`${where}: attribute '${name}' (subgraph or sparse tensor) is not supported`);
    out[name] = read(a, where);
  }
  return out;
}

type AttrWriter = (name: string, a: Attr) => onnx.IAttributeProto;
const enc = new TextEncoder();

const ATTR_WRITE: { [K in Attr['type']]: AttrWriter } = {
  int: (name, a) => ({ name, type: AT.INT, i: toLong(a.value as number) }),
  float: (name, a) => ({ name, type: AT.FLOAT, f: a.value as number }),
  string: (name, a) => ({ name, type: AT.STRING, s: enc.encode(a.value as string) }),
  ints: (name, a) => ({ name, type: AT.INTS, ints: (a.value as number[]).map(toLong) }),
  floats: (name, a) => ({ name, type: AT.FLOATS, floats: a.value as number[] }),
  strings: (name, a) => ({ name, type: AT.STRINGS, strings: (a.value as string[]).map((s) => enc.encode(s)) }),
  tensor: (name, a) => ({ name, type: AT.TENSOR, t: tensorToProto('', a.value as Tensor) }),
};

// ---------- decoding ----------

/** First bytes a serialized ModelProto can start with (tags of its fields 1-8, 14, 20, 25). */
const MODEL_TAGS = new Set([0x08, 0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x72, 0xa2, 0xca]);

function decodeModel(bytes: Uint8Array, source: string): onnx.ModelProto {
  if (bytes.length === 0) throw new ModelError(`${source}: not an ONNX model (the file is empty)`);
  if (!MODEL_TAGS.has(bytes[0]))
    throw new ModelError(
      `${source}: not an ONNX model (does not start like an ONNX protobuf, first byte 0x${bytes[0].toString(16)})`,
    );
  let m: onnx.ModelProto;
  try {
    m = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new ModelError(`${source}: truncated or corrupt ONNX protobuf (${(e as Error).message})`);
  }
  if (!m.graph) throw new ModelError(`${source}: not an ONNX model (no graph in the protobuf)`);
  if (!m.opsetImport.length && !m.irVersion)
    throw new ModelError(`${source}: not an ONNX model (no ir_version or opset_import)`);
  if (!m.opsetImport.length) throw new ModelError(`${source}: truncated or corrupt ONNX protobuf (no opset_import)`);
  return m;
}

const isDefaultDomain = (d: string | null | undefined): boolean => !d || d === 'ai.onnx';

function defaultOpset(m: onnx.ModelProto, source: string): number {
  const imp = m.opsetImport.find((o) => isDefaultDomain(o.domain));
  if (!imp) throw new ModelError(`${source}: the model imports no default-domain (ai.onnx) opset`);
  const v = toNum(imp.version);
  if (v < MIN_OPSET || v > MAX_OPSET)
    throw new ModelError(`${source}: ONNX opset ${v} is not supported (supported: ${MIN_OPSET} to ${MAX_OPSET})`);
  return v;
}

function valueInfo(v: onnx.IValueInfoProto, source: string, needShape: boolean): ValueInfo {
  const name = v.name ?? '';
  const tt = v.type?.tensorType;
  if (!tt) throw new ModelError(`${source}: graph input/output '${name}' is not a tensor`);
  const dtype = dtypeOf(tt.elemType ?? 0, () => `${source}: '${name}'`);
  if (!tt.shape && needShape) throw new ModelError(`${source}: graph input '${name}' has no shape`);
  const shape: Dim[] = (tt.shape?.dim ?? []).map((d, i) =>
    d.dimParam ? d.dimParam : d.dimValue !== null && d.dimValue !== undefined ? toNum(d.dimValue) : `${name}_dim${i}`,
  );
  return { name, dtype, shape };
}

/** Model names are kept (duplicates get a suffix); unnamed nodes become `${opType}_${index}`. */
function uniqueNames(nodes: onnx.INodeProto[]): string[] {
  const used = new Set<string>(nodes.map((n) => n.name ?? '').filter(Boolean));
  const seen = new Set<string>();
  return nodes.map((n, i) => {
    const base = n.name || `${n.opType}_${i}`;
    let name = base;
    if (n.name && !seen.has(name)) {
      seen.add(name);
      return name;
    }
    for (let k = 1; used.has(name) || seen.has(name); k++) name = `${base}_${k}`;
    used.add(name);
    seen.add(name);
    return name;
  });
}

// ---------- Constant nodes ----------

type ConstantReader = (a: Attr) => Tensor;

const CONSTANT_VALUE: Record<string, ConstantReader> = {
  value: (a) => a.value as Tensor,
  value_float: (a) => ({ dtype: 'float32', dims: [], data: Float32Array.of(a.value as number) }),
  value_floats: (a) => ({ dtype: 'float32', dims: [(a.value as number[]).length], data: Float32Array.from(a.value as number[]) }),
  value_int: (a) => i64([], [a.value as number]),
  value_ints: (a) => i64([(a.value as number[]).length], a.value as number[]),
};

function constantTensor(n: Node, where: string): Tensor {
  for (const [k, read] of Object.entries(CONSTANT_VALUE)) if (n.attrs[k]) return read(n.attrs[k]);
  throw new ModelError(`${where}: Constant with attribute(s) ${Object.keys(n.attrs).join(', ')} is not supported`);
}

// ---------- import ----------

export function importOnnx(bytes: Uint8Array, source: string): Graph {
  const m = decodeModel(bytes, source);
  const opset = defaultOpset(m, source);
  const gp = m.graph as onnx.GraphProto; // decoded messages have their repeated fields set
  const initializers = new Map<string, Tensor>();
  for (const t of gp.initializer) initializers.set(t.name ?? '', tensorFromProto(t, source));
  if (gp.sparseInitializer?.length) throw new ModelError(`${source}: sparse initializers are not supported`);

  const names = uniqueNames(gp.node);
  const nodes: Node[] = [];
  gp.node.forEach((np, i) => {
    const where = `${source}: node '${names[i]}' (${np.opType})`;
    if (!isDefaultDomain(np.domain))
      throw new ModelError(`${where}: op '${np.opType}' from domain '${np.domain}' is not supported`);
    const node: Node = {
      name: names[i],
      opType: np.opType ?? '',
      inputs: [...(np.input ?? [])],
      outputs: [...(np.output ?? [])],
      attrs: readAttrs(np, where),
    };
    if (node.opType === 'Constant') initializers.set(node.outputs[0], constantTensor(node, where));
    else nodes.push(node);
  });

  const inputs = gp.input.filter((v) => !initializers.has(v.name ?? '')).map((v) => valueInfo(v, source, true));
  const outputs = gp.output.map((v) => valueInfo(v, source, false));
  const g: Graph = { inputs, outputs, nodes, initializers, layout: 'NCHW', source };
  normaliseOpset(g, opset);
  return g;
}

// ---------- opset normalisation (everything to its opset-17 form) ----------

interface NormCtx {
  g: Graph;
  opset: number;
  where: string;
  /** Pre-13 Softmax-like nodes, resolved once ranks are known. */
  legacySoftmax: Node[];
}

type Normaliser = (n: Node, c: NormCtx) => void;

function freshName(g: Graph, base: string): string {
  let name = base;
  for (let k = 1; g.initializers.has(name); k++) name = `${base}_${k}`;
  return name;
}

function addConst(c: NormCtx, n: Node, what: string, t: Tensor): string {
  const name = freshName(c.g, `${n.name}_${what}`);
  c.g.initializers.set(name, t);
  return name;
}

function setInput(n: Node, idx: number, name: string): void {
  while (n.inputs.length < idx) n.inputs.push('');
  n.inputs[idx] = name;
}

/** Move an int-list attribute to an int64 input (Squeeze axes before 13, Split before 13, ...). */
function intsAttrToInput(attr: string, idx: number, before: number): Normaliser {
  return (n, c) => {
    if (c.opset >= before) return;
    const v = n.attrs[attr];
    delete n.attrs[attr];
    if (!v) return;
    const vals = v.type === 'int' ? [v.value] : (v.value as number[]);
    setInput(n, idx, addConst(c, n, attr, i64(v.type === 'int' ? [] : [vals.length], vals)));
  };
}

/** Move a float attribute to a scalar float input (Clip min/max before 11, Pad value before 11). */
function floatAttrToInput(attr: string, idx: number, before: number): Normaliser {
  return (n, c) => {
    if (c.opset >= before) return;
    const v = n.attrs[attr];
    delete n.attrs[attr];
    if (!v) return;
    setInput(n, idx, addConst(c, n, attr, { dtype: 'float32', dims: [], data: Float32Array.of(v.value as number) }));
  };
}

function constInput(n: Node, idx: number, c: NormCtx): number[] | undefined {
  const name = n.inputs[idx];
  if (!name) return undefined;
  const t = c.g.initializers.get(name);
  if (!t) throw new ModelError(`${c.where}: input '${name}' must be a constant`);
  return toNumbers(t);
}

/** ReduceMean & co. take axes as an input from opset 18; opset 17 wants the attribute. */
const reduceAxesToAttr: Normaliser = (n, c) => {
  if (c.opset < 18) return;
  const axes = constInput(n, 1, c);
  n.inputs = n.inputs.slice(0, 1);
  const noop = n.attrs.noop_with_empty_axes;
  delete n.attrs.noop_with_empty_axes;
  if (axes && axes.length) n.attrs.axes = A.ints(axes);
  else if (noop && noop.value) {
    n.opType = 'Identity';
    n.attrs = {};
  }
};

const chain =
  (...fs: Normaliser[]): Normaliser =>
  (n, c) => {
    for (const f of fs) f(n, c);
  };

const dropAttrs =
  (...names: string[]): Normaliser =>
  (n) => {
    for (const a of names) delete n.attrs[a];
  };

const requireAttrDefault =
  (name: string, ok: (a: Attr) => boolean): Normaliser =>
  (n, c) => {
    const a = n.attrs[name];
    if (!a) return;
    if (!ok(a)) throw new ModelError(`${c.where}: attribute '${name}' is not supported`);
    delete n.attrs[name];
  };

const allOnes = (a: Attr): boolean => (a.value as number[]).every((x) => x === 1);

const batchNorm: Normaliser = (n, c) => {
  delete n.attrs.spatial;
  delete n.attrs.momentum;
  const extra = n.outputs.slice(1).filter(Boolean);
  if (extra.length && c.g.nodes.some((o) => o.inputs.some((x) => extra.includes(x))))
    throw new ModelError(`${c.where}: training-mode outputs are not supported`);
  n.outputs = n.outputs.slice(0, 1);
  delete n.attrs.training_mode;
};

const dropout: Normaliser = (n, c) => {
  const ratio = n.attrs.ratio;
  delete n.attrs.ratio;
  delete n.attrs.is_test;
  if (ratio && c.opset < 12)
    setInput(n, 1, addConst(c, n, 'ratio', { dtype: 'float32', dims: [], data: Float32Array.of(ratio.value as number) }));
};

const padNorm: Normaliser = (n, c) => {
  if (c.opset < 11) {
    const pads = n.attrs.pads ?? n.attrs.paddings;
    delete n.attrs.pads;
    delete n.attrs.paddings;
    if (pads) setInput(n, 1, addConst(c, n, 'pads', i64([(pads.value as number[]).length], pads.value as number[])));
    floatAttrToInput('value', 2, 11)(n, c);
  }
  if (n.inputs[3]) throw new ModelError(`${c.where}: Pad with an 'axes' input is not supported`);
  n.inputs = n.inputs.slice(0, 3);
  const mode = n.attrs.mode;
  if (mode && mode.value === 'wrap') throw new ModelError(`${c.where}: Pad mode 'wrap' is not supported`);
};

const sliceNorm: Normaliser = (n, c) => {
  if (c.opset >= 10) return;
  intsAttrToInput('starts', 1, 10)(n, c);
  intsAttrToInput('ends', 2, 10)(n, c);
  intsAttrToInput('axes', 3, 10)(n, c);
};

const resizeNorm: Normaliser = (n, c) => {
  if (c.opset < 11) {
    n.inputs = [n.inputs[0], '', n.inputs[1]];
    if (!n.attrs.coordinate_transformation_mode) n.attrs.coordinate_transformation_mode = A.string('asymmetric');
    if (!n.attrs.nearest_mode) n.attrs.nearest_mode = A.string('floor');
  }
  requireAttrDefault('antialias', (a) => a.value === 0)(n, c);
  requireAttrDefault('keep_aspect_ratio_policy', (a) => a.value === 'stretch')(n, c);
  if (n.attrs.axes) throw new ModelError(`${c.where}: Resize with 'axes' is not supported`);
};

const castNorm: Normaliser = (n) => {
  delete n.attrs.saturate;
  const to = n.attrs.to;
  if (to && (to.value === DT.FLOAT16 || to.value === DT.DOUBLE || to.value === DT.BFLOAT16)) n.attrs.to = A.int(DT.FLOAT);
  if (to && (to.value === DT.INT8 || to.value === DT.INT16 || to.value === DT.UINT16)) n.attrs.to = A.int(DT.INT32);
};

const softmaxLegacy: Normaliser = (n, c) => {
  if (c.opset >= 13) return;
  if (!n.attrs.axis) n.attrs.axis = A.int(1);
  c.legacySoftmax.push(n);
};

const NORMALISE: Record<string, Normaliser> = {
  Squeeze: intsAttrToInput('axes', 1, 13),
  Unsqueeze: intsAttrToInput('axes', 1, 13),
  ReduceSum: intsAttrToInput('axes', 1, 13),
  ReduceMean: reduceAxesToAttr,
  ReduceMax: reduceAxesToAttr,
  ReduceMin: reduceAxesToAttr,
  ReduceProd: reduceAxesToAttr,
  ReduceL1: reduceAxesToAttr,
  ReduceL2: reduceAxesToAttr,
  ReduceLogSum: reduceAxesToAttr,
  ReduceLogSumExp: reduceAxesToAttr,
  ReduceSumSquare: reduceAxesToAttr,
  Split: chain(intsAttrToInput('split', 1, 13), dropAttrs('num_outputs')),
  Pad: padNorm,
  Clip: chain(floatAttrToInput('min', 1, 11), floatAttrToInput('max', 2, 11)),
  Slice: sliceNorm,
  TopK: intsAttrToInput('k', 1, 10),
  BatchNormalization: batchNorm,
  Dropout: dropout,
  Resize: resizeNorm,
  Cast: castNorm,
  Softmax: softmaxLegacy,
  LogSoftmax: softmaxLegacy,
  Hardmax: softmaxLegacy,
  AveragePool: requireAttrDefault('dilations', allOnes),
  Scatter: (n) => {
    n.opType = 'ScatterElements';
  },
};

/**
 * Before opset 13 Softmax(axis) meant "flatten to 2-D at axis, softmax the rows". That equals the
 * opset-13 single-axis Softmax when axis is the last axis; otherwise it is rewritten as
 * Flatten -> Softmax(-1) -> Reshape(Shape(x)).
 */
function fixLegacySoftmax(g: Graph, legacy: Node[], rankOf: (t: string) => number | undefined): void {
  for (const n of legacy) {
    const axis = n.attrs.axis.value as number;
    const rank = rankOf(n.inputs[0]);
    if (rank !== undefined && (axis === rank - 1 || axis === -1)) {
      n.attrs.axis = A.int(-1);
      continue;
    }
    const [x] = n.inputs;
    const [y] = n.outputs;
    const flat = `${n.name}_flat`;
    const soft = `${n.name}_2d`;
    const shape = `${n.name}_shape`;
    const at = g.nodes.indexOf(n);
    n.inputs = [flat];
    n.outputs = [soft];
    n.attrs = { axis: A.int(-1) };
    g.nodes.splice(at, 0, { name: flat, opType: 'Flatten', inputs: [x], outputs: [flat], attrs: { axis: A.int(axis) } });
    g.nodes.splice(at + 2, 0,
      { name: shape, opType: 'Shape', inputs: [x], outputs: [shape], attrs: {} },
      { name: `${n.name}_reshape`, opType: 'Reshape', inputs: [soft, shape], outputs: [y], attrs: {} },
    );
  }
}

type RankRule = (ins: (number | undefined)[]) => number | undefined;

const sameAsInputs: RankRule = (r) => (r.every((x) => x !== undefined) ? Math.max(...(r as number[])) : undefined);
const firstRank: RankRule = (r) => r[0];
const two: RankRule = () => 2;

/** Output ranks of the ops that typically sit in front of a classifier's Softmax. */
const RANK_RULES: Record<string, RankRule> = {
  Gemm: two,
  Flatten: two,
  MatMul: sameAsInputs,
  ...Object.fromEntries(
    ['Relu', 'Add', 'Sub', 'Mul', 'Div', 'Identity', 'Sigmoid', 'Tanh', 'LeakyRelu', 'Softmax', 'LogSoftmax'].map((op) => [op, sameAsInputs]),
  ),
  ...Object.fromEntries(
    ['Dropout', 'BatchNormalization', 'Clip', 'Conv', 'MaxPool', 'AveragePool', 'GlobalAveragePool'].map((op) => [op, firstRank]),
  ),
};

/** Ranks from declared shapes plus a light walk; enough to place a legacy Softmax axis. */
function simpleRanks(g: Graph): (t: string) => number | undefined {
  const rank = new Map<string, number>();
  for (const v of g.inputs) rank.set(v.name, v.shape.length);
  for (const [k, t] of g.initializers) rank.set(k, t.dims.length);
  for (const n of g.nodes) {
    const rule = RANK_RULES[n.opType];
    const r = rule?.(n.inputs.filter(Boolean).map((i) => rank.get(i)));
    if (r !== undefined) rank.set(n.outputs[0], r);
  }
  return (t) => rank.get(t);
}

function normaliseOpset(g: Graph, opset: number): void {
  const legacySoftmax: Node[] = [];
  for (const n of [...g.nodes]) {
    const f = NORMALISE[n.opType];
    if (f) f(n, { g, opset, where: `${g.source}: node '${n.name}' (${n.opType})`, legacySoftmax });
  }
  if (legacySoftmax.length) fixLegacySoftmax(g, legacySoftmax, simpleRanks(g));
}

// ---------- export ----------

function valueInfoToProto(v: ValueInfo): onnx.IValueInfoProto {
  const dim = v.shape.map((d) => (typeof d === 'number' ? { dimValue: toLong(d) } : { dimParam: d }));
  // An empty shape is written as "no shape": outputs often come without one, and a scalar loses nothing.
  const shape = dim.length ? { dim } : undefined;
  return { name: v.name, type: { tensorType: { elemType: ONNX_TYPE_OF[v.dtype], shape } } };
}

/** Ops opset 17 lacks, written as opset-17 subgraphs. */
type Lowering = (n: Node, g: Graph) => Node[];

const sub = (n: Node, k: string): string => `${n.name}__${k}`;

function scalarConst(g: Graph, name: string, v: number): string {
  g.initializers.set(name, { dtype: 'float32', dims: [], data: Float32Array.of(v) });
  return name;
}

const LOWER: Record<string, Lowering> = {
  // Gelu (opset 20): 0.5 x (1 + erf(x / sqrt 2)), or the tanh approximation.
  Gelu: (n, g) => {
    const x = n.inputs[0];
    const mk = (k: string, op: string, inputs: string[]): Node => ({ name: sub(n, k), opType: op, inputs, outputs: [sub(n, k)], attrs: {} });
    const half_ = scalarConst(g, sub(n, 'half'), 0.5);
    const one = scalarConst(g, sub(n, 'one'), 1);
    const inner: Node[] =
      n.attrs.approximate?.value === 'tanh'
        ? [
            mk('x3', 'Mul', [x, x]),
            mk('x3b', 'Mul', [sub(n, 'x3'), x]),
            mk('x3c', 'Mul', [sub(n, 'x3b'), scalarConst(g, sub(n, 'c'), 0.044715)]),
            mk('s', 'Add', [x, sub(n, 'x3c')]),
            mk('s2', 'Mul', [sub(n, 's'), scalarConst(g, sub(n, 'k'), Math.sqrt(2 / Math.PI))]),
            mk('t', 'Tanh', [sub(n, 's2')]),
          ]
        : [mk('d', 'Mul', [x, scalarConst(g, sub(n, 'rs2'), Math.SQRT1_2)]), mk('t', 'Erf', [sub(n, 'd')])];
    const out: Node = { name: n.name, opType: 'Mul', inputs: [sub(n, 'hx'), sub(n, 'p')], outputs: n.outputs, attrs: {} };
    return [...inner, mk('p', 'Add', [sub(n, 't'), one]), mk('hx', 'Mul', [x, half_]), out];
  },
};

function nodeToProto(n: Node): onnx.INodeProto {
  return {
    name: n.name,
    opType: n.opType,
    input: n.inputs,
    output: n.outputs,
    attribute: Object.entries(n.attrs).map(([k, a]) => ATTR_WRITE[a.type](k, a)),
  };
}

/** An initializer's bytes handed to the runtime beside the model, as an in-memory external data file. */
export interface ExternalFile {
  path: string;
  data: Uint8Array;
}

export function exportOnnx(g: Graph): Uint8Array {
  return exportOnnxSplit(g, Infinity).model;
}

/**
 * Export with every initializer of at least `minBytes` bytes as external data: the model proto
 * names one in-memory file per such tensor, and `files` holds views of the tensors' own bytes.
 * Nothing is copied, so a large program never exists twice in JS memory (weights plus a protobuf
 * holding them again) while the runtime builds its session.
 */
export function exportOnnxSplit(g: Graph, minBytes: number): { model: Uint8Array; files: ExternalFile[] } {
  const inits = new Map(g.initializers);
  const scratch: Graph = { ...g, initializers: inits };
  const nodes = g.nodes.flatMap((n) => (LOWER[n.opType] ? LOWER[n.opType](n, scratch) : [n]));
  const files: ExternalFile[] = [];
  const initializer = [...inits].map(([k, t]) => {
    if (t.data.byteLength < minBytes) return tensorToProto(k, t);
    const path = `w${files.length}.bin`;
    files.push({ path, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) });
    return {
      name: k,
      dataType: ONNX_TYPE_OF[t.dtype],
      dims: t.dims.map(toLong),
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: path },
        { key: 'offset', value: '0' },
        { key: 'length', value: String(t.data.byteLength) },
      ],
    };
  });
  const graph: onnx.IGraphProto = {
    name: 'lrp-lens',
    node: nodes.map(nodeToProto),
    initializer,
    input: g.inputs.map(valueInfoToProto),
    output: g.outputs.map(valueInfoToProto),
  };
  const model: onnx.IModelProto = {
    irVersion: toLong(8),
    producerName: 'lrp-lens',
    opsetImport: [{ domain: '', version: toLong(EXPORT_OPSET) }],
    graph,
  };
  return { model: onnx.ModelProto.encode(model).finish(), files };
}
