// What every shape rule and value rule reads: the node, its input shapes and the constant values
// known so far.
import { DType, Graph, ModelError, Node, Tensor, attrInt, attrInts, describeNode, toNumbers } from '../graph';

export interface TensorInfo {
  dtype: DType;
  dims: number[];
}

export class NodeCtx {
  constructor(
    readonly g: Graph,
    readonly node: Node,
    readonly ins: (TensorInfo | undefined)[],
    readonly values: Map<string, Tensor>,
  ) {}

  err(msg: string): ModelError {
    return new ModelError(`${describeNode(this.g, this.node)}: ${msg}`);
  }

  /** Info of input i (must be present). */
  in(i: number): TensorInfo {
    const t = this.ins[i];
    if (!t) throw this.err(`input ${i} is missing`);
    return t;
  }

  has(i: number): boolean {
    return !!this.node.inputs[i];
  }

  /** The constant values of input i, as numbers; undefined when the input is omitted. */
  opt(i: number): number[] | undefined {
    const name = this.node.inputs[i];
    if (!name) return undefined;
    const v = this.values.get(name);
    if (!v) throw this.err(`input '${name}' must be a constant (or computable from static shapes)`);
    return toNumbers(v);
  }

  need(i: number): number[] {
    const v = this.opt(i);
    if (!v) throw this.err(`input ${i} is required`);
    return v;
  }

  int(name: string, dflt: number): number {
    return attrInt(this.node, name, dflt);
  }

  ints(name: string): number[] | undefined {
    return attrInts(this.node, name, undefined);
  }

  axis(a: number, rank: number): number {
    if (a < -rank || a >= rank) throw this.err(`axis ${a} is out of range for rank ${rank}`);
    return a < 0 ? a + rank : a;
  }
}

export type ShapeFn = (c: NodeCtx) => TensorInfo[];

export function broadcastDims(list: number[][], err: () => ModelError): number[] {
  const rank = Math.max(0, ...list.map((d) => d.length));
  const out = new Array<number>(rank).fill(1);
  for (const dims of list)
    for (let i = 0; i < dims.length; i++) {
      const k = rank - dims.length + i;
      const d = dims[i];
      if (d === out[k] || d === 1) continue;
      if (out[k] !== 1) throw err();
      out[k] = d;
    }
  return out;
}
