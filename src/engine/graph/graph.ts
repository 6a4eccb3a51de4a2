// The one small graph representation every importer produces and every backend runs.
// Op types and attribute meanings are ONNX's, whatever format the model came from.

export type DType = 'float32' | 'int64' | 'int32' | 'bool' | 'uint8' | 'float64';

export type TensorData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

export interface Tensor {
  dtype: DType;
  dims: number[];
  data: TensorData;
}

export type Attr =
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'string'; value: string }
  | { type: 'ints'; value: number[] }
  | { type: 'floats'; value: number[] }
  | { type: 'strings'; value: string[] }
  | { type: 'tensor'; value: Tensor };

export interface Node {
  name: string;
  opType: string;
  inputs: string[]; // '' marks an omitted optional input
  outputs: string[];
  attrs: Record<string, Attr>;
}

/** A dimension is a number when known, a string when symbolic (e.g. 'batch'). */
export type Dim = number | string;

export interface ValueInfo {
  name: string;
  dtype: DType;
  shape: Dim[];
}

export type Layout = 'NCHW' | 'NHWC';

export interface Graph {
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  nodes: Node[];
  initializers: Map<string, Tensor>;
  /** Layout of the (first) image input: ONNX models are NCHW, tf.js models NHWC. */
  layout: Layout;
  /** The file this graph came from, for error messages. */
  source: string;
}

export class ModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelError';
  }
}

// ---------- tensors ----------

export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function f32(dims: number[], data?: ArrayLike<number>): Tensor {
  const t = new Float32Array(numel(dims));
  if (data) t.set(data);
  return { dtype: 'float32', dims: [...dims], data: t };
}

export function i64(dims: number[], data: ArrayLike<number>): Tensor {
  const t = new BigInt64Array(numel(dims));
  for (let i = 0; i < t.length; i++) t[i] = BigInt(Math.trunc(data[i]));
  return { dtype: 'int64', dims: [...dims], data: t };
}

/** The values of a tensor as plain numbers (int64 converted, fine for shapes and indices). */
export function toNumbers(t: Tensor): number[] {
  const out: number[] = new Array(t.data.length);
  for (let i = 0; i < t.data.length; i++) out[i] = Number(t.data[i]);
  return out;
}

export function asFloat32(t: Tensor): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  const out = new Float32Array(t.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Number(t.data[i]);
  return out;
}

export function stridesOf(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= dims[i];
  }
  return s;
}

// ---------- attributes ----------

export const A = {
  int: (value: number): Attr => ({ type: 'int', value }),
  float: (value: number): Attr => ({ type: 'float', value }),
  ints: (value: number[]): Attr => ({ type: 'ints', value }),
  floats: (value: number[]): Attr => ({ type: 'floats', value }),
  string: (value: string): Attr => ({ type: 'string', value }),
  tensor: (value: Tensor): Attr => ({ type: 'tensor', value }),
};

export function attrInt(node: Node, name: string, dflt: number): number {
  const a = node.attrs[name];
  if (!a) return dflt;
  if (a.type === 'int' || a.type === 'float') return a.value;
  throw new ModelError(`node '${node.name}' (${node.opType}): attribute '${name}' should be a number`);
}

export const attrFloat = attrInt;

export function attrInts(node: Node, name: string, dflt: number[] | undefined): number[] | undefined {
  const a = node.attrs[name];
  if (!a) return dflt;
  if (a.type === 'ints' || a.type === 'floats') return a.value;
  if (a.type === 'int') return [a.value];
  throw new ModelError(`node '${node.name}' (${node.opType}): attribute '${name}' should be a list of numbers`);
}

export function attrString(node: Node, name: string, dflt: string): string {
  const a = node.attrs[name];
  if (!a) return dflt;
  if (a.type === 'string') return a.value;
  throw new ModelError(`node '${node.name}' (${node.opType}): attribute '${name}' should be a string`);
}

// ---------- graph helpers ----------

/** Map from tensor name to the node producing it. */
export function producers(g: Graph): Map<string, Node> {
  const m = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) if (o) m.set(o, n);
  return m;
}

/** Map from tensor name to the nodes consuming it (graph outputs are not counted). */
export function consumers(g: Graph): Map<string, Node[]> {
  const m = new Map<string, Node[]>();
  for (const n of g.nodes)
    for (const i of n.inputs) {
      if (!i) continue;
      const l = m.get(i);
      if (l) l.push(n);
      else m.set(i, [n]);
    }
  return m;
}

/** Nodes in a topological order; throws on cycles or dangling inputs. */
export function topoSort(g: Graph): Node[] {
  const available = new Set<string>([...g.inputs.map((i) => i.name), ...g.initializers.keys(), '']);
  const pending = [...g.nodes];
  const out: Node[] = [];
  const prod = producers(g);
  while (pending.length) {
    let progressed = false;
    for (let i = 0; i < pending.length; ) {
      const n = pending[i];
      if (n.inputs.every((x) => available.has(x))) {
        out.push(n);
        for (const o of n.outputs) available.add(o);
        pending.splice(i, 1);
        progressed = true;
      } else i++;
    }
    if (!progressed) {
      const n = pending[0];
      const missing = n.inputs.filter((x) => !available.has(x) && !prod.has(x));
      throw new ModelError(
        `${g.source}: node '${n.name}' (${n.opType}) ` +
          (missing.length ? `reads '${missing[0]}', which nothing produces` : 'is part of a cycle'),
      );
    }
  }
  return out;
}

/** Remove nodes whose outputs reach no graph output, and unused initializers. */
export function pruneDead(g: Graph): void {
  const needed = new Set(g.outputs.map((o) => o.name));
  const order = topoSort(g);
  const keep: Node[] = [];
  for (let i = order.length - 1; i >= 0; i--) {
    const n = order[i];
    if (n.outputs.some((o) => needed.has(o))) {
      keep.push(n);
      for (const x of n.inputs) if (x) needed.add(x);
    }
  }
  keep.reverse();
  g.nodes = keep;
  for (const k of [...g.initializers.keys()]) if (!needed.has(k)) g.initializers.delete(k);
}

/** Replace every use of tensor `from` by `to` (node inputs and graph outputs). */
export function renameUses(g: Graph, from: string, to: string): void {
  for (const n of g.nodes) for (let i = 0; i < n.inputs.length; i++) if (n.inputs[i] === from) n.inputs[i] = to;
  for (const o of g.outputs) if (o.name === from) o.name = to;
}

export function describeNode(g: Graph, n: Node): string {
  return `${g.source}: node '${n.name}' (${n.opType})`;
}
