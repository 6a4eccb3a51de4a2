// A small helper for emitting nodes into a Graph under construction.
import { A, Attr, Graph, Node, Tensor, f32, i64 } from './graph';

export class GraphBuilder {
  private counter = 0;
  private readonly taken: Set<string>;

  constructor(readonly g: Graph) {
    this.taken = new Set<string>([...g.initializers.keys(), ...g.inputs.map((i) => i.name)]);
    for (const n of g.nodes) {
      this.taken.add(n.name);
      for (const o of n.outputs) this.taken.add(o);
    }
  }

  /** A fresh tensor/node name with the given hint. */
  fresh(hint: string): string {
    let name: string;
    do name = `lrp/${hint}/${this.counter++}`;
    while (this.taken.has(name));
    this.taken.add(name);
    return name;
  }

  /** Add a node; returns its output names. */
  node(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, nOut = 1, hint = opType): string[] {
    const outputs = Array.from({ length: nOut }, () => this.fresh(hint));
    const n: Node = { name: this.fresh(`${hint}_node`), opType, inputs, outputs, attrs };
    this.g.nodes.push(n);
    return outputs;
  }

  /** Single-output shorthand. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, hint = opType): string {
    return this.node(opType, inputs, attrs, 1, hint)[0];
  }

  /** Names of tensors already in the graph, so a tensor used twice is stored once. */
  private readonly stored = new Map<Tensor, string>();

  constant(t: Tensor, hint = 'const'): string {
    if (this.stored.size === 0) for (const [k, v] of this.g.initializers) this.stored.set(v, k);
    const known = this.stored.get(t);
    if (known !== undefined && this.g.initializers.get(known) === t) return known;
    const name = this.fresh(hint);
    this.g.initializers.set(name, t);
    this.stored.set(t, name);
    return name;
  }

  scalar(v: number): string {
    return this.constant(f32([], [v]), 'scalar');
  }

  ints(v: number[]): string {
    return this.constant(i64([v.length], v), 'ints');
  }

  // ---- common compounds ----

  add(a: string, b: string): string {
    return this.op('Add', [a, b]);
  }
  sub(a: string, b: string): string {
    return this.op('Sub', [a, b]);
  }
  mul(a: string, b: string): string {
    return this.op('Mul', [a, b]);
  }
  div(a: string, b: string): string {
    return this.op('Div', [a, b]);
  }
  relu(a: string): string {
    return this.op('Relu', [a]);
  }
  /** min(x, 0) */
  negPart(a: string): string {
    return this.sub(a, this.relu(a));
  }
  reshape(a: string, dims: number[]): string {
    return this.op('Reshape', [a, this.ints(dims)]);
  }
  sumAll(a: string): string {
    return this.op('ReduceSum', [a], { keepdims: A.int(0) });
  }
  /** Sum a list of tensors of the same shape. */
  sumOf(xs: string[]): string {
    let acc = xs[0];
    for (let i = 1; i < xs.length; i++) acc = this.add(acc, xs[i]);
    return acc;
  }
  /**
   * The stabilised denominator z + eps * s, where s = +1 where z >= 0 and -1 elsewhere.
   */
  stabilize(z: string, eps: number): string {
    const zero = this.scalar(0);
    const sign = this.op('Where', [this.op('Less', [z, zero]), this.scalar(-eps), this.scalar(eps)]);
    return this.add(z, sign);
  }
}
