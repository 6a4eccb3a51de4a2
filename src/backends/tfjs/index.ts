// The tf.js backend: interprets a Graph (ONNX op semantics) with @tensorflow/tfjs ops, one op
// family a file (the values they share, some held physically NHWC, in value.ts).
// tfjs-node when installed, else the wasm backend (loaded offline from node_modules), else cpu.
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { Backend, CompiledGraph } from '../backend';
import { type DType, type Graph, type Node, type Tensor, ModelError, describeNode, topoSort } from '../../engine/graph/graph';
import { type Ctx, type OpImpl, type Val, hostVal, toHost } from './value';
import { ELEMENTWISE_OPS } from './elementwise';
import { LINEAR_OPS } from './linear';
import { NORMALISATION_OPS } from './normalisation';
import { POOLING_OPS } from './pooling';
import { REDUCE_OPS } from './reduce';
import { STRUCTURE_OPS } from './structure';

const OPS: Record<string, OpImpl> = {
  ...LINEAR_OPS,
  ...ELEMENTWISE_OPS,
  ...NORMALISATION_OPS,
  ...REDUCE_OPS,
  ...STRUCTURE_OPS,
  ...POOLING_OPS,
};

/** The ONNX op types the tfjs backend can run. */
export const TFJS_OPS: readonly string[] = Object.keys(OPS);

/** An initializer: uploaded on first use, droppable when only derived forms are needed. */
class ConstVal implements Val {
  readonly nhwc = false;
  readonly dtype: DType;
  private tensor: tf.Tensor | null = null;
  constructor(readonly host: Tensor) {
    this.dtype = host.dtype;
  }
  get t(): tf.Tensor {
    this.tensor ??= tf.keep(hostVal(this.host).t);
    return this.tensor;
  }
  drop(): void {
    this.tensor?.dispose();
    this.tensor = null;
  }
}

/** Inputs that ops only read through `derive` (weights re-laid out once and cached). */
const DERIVED_INPUTS: Record<string, number[]> = { Conv: [1], ConvTranspose: [1], BatchNormalization: [1, 2, 3, 4] };

class TfjsCompiled implements CompiledGraph {
  private readonly order: Node[];
  private readonly consts = new Map<string, ConstVal>();
  /** initializers whose every use goes through `derive`: their raw upload is dropped after use */
  private readonly deriveOnly = new Set<string>();
  private readonly derived = new Map<string, tf.Tensor>();
  private readonly lastUse = new Map<string, number>();
  private disposed = false;

  constructor(private readonly graph: Graph) {
    this.order = topoSort(graph);
    const missing = this.order.filter((n) => !OPS[n.opType]);
    if (missing.length) {
      const n = missing[0];
      throw new ModelError(`${describeNode(graph, n)}: op type ${n.opType} is not supported by the tfjs backend`);
    }
    for (const [name, t] of graph.initializers) {
      this.consts.set(name, new ConstVal(t));
      this.deriveOnly.add(name);
    }
    this.order.forEach((n, i) =>
      n.inputs.forEach((x, k) => {
        if (!x) return;
        this.lastUse.set(x, i);
        if (!DERIVED_INPUTS[n.opType]?.includes(k)) this.deriveOnly.delete(x);
      }),
    );
    for (const o of graph.outputs) this.deriveOnly.delete(o.name);
    for (const o of graph.outputs) this.lastUse.set(o.name, Infinity);
  }

  async run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    if (this.disposed) throw new Error('tfjs backend: graph already disposed');
    const g = this.graph;
    const env = new Map<string, Val>(this.consts);
    const owned = new Set<string>();
    const release = (name: string) => {
      if (owned.has(name)) {
        env.get(name)?.t.dispose();
        owned.delete(name);
      }
    };
    try {
      for (const inputInfo of g.inputs) {
        const f = feeds[inputInfo.name];
        if (!f) {
          if (this.consts.has(inputInfo.name)) continue;
          throw new ModelError(`${g.source}: no value fed for input '${inputInfo.name}'`);
        }
        const v = hostVal(f);
        delete v.host;
        env.set(inputInfo.name, v);
        owned.add(inputInfo.name);
      }
      this.order.forEach((node, i) => {
        const ctx: Ctx = {
          node,
          graph: g,
          inputs: node.inputs.map((x) => (x ? env.get(x) : undefined)),
          derive: (key, make) => {
            let t = this.derived.get(key);
            if (!t) {
              t = tf.keep(make());
              this.derived.set(key, t);
            }
            return t;
          },
        };
        let outs: Val[] = [];
        const tensors = tf.tidy(() => {
          try {
            outs = OPS[node.opType](ctx);
          } catch (e) {
            if (e instanceof ModelError) throw e;
            throw new ModelError(`${describeNode(g, node)}: ${(e as Error).message}`);
          }
          return outs.map((o) => o.t);
        });
        const ins = new Set(ctx.inputs.map((v) => v?.t));
        outs.forEach((o, k) => {
          o.t = ins.has(tensors[k]) ? tf.clone(tensors[k]) : tensors[k];
          const name = node.outputs[k];
          if (!name) {
            o.t.dispose();
            return;
          }
          env.set(name, o);
          owned.add(name);
        });
        for (const x of node.inputs)
          if (x && this.lastUse.get(x) === i) {
            release(x);
            if (this.deriveOnly.has(x)) this.consts.get(x)?.drop();
          }
        node.outputs.forEach((name, k) => {
          if (name && !this.lastUse.has(name) && outs[k]) release(name);
        });
      });
      const result: Record<string, Tensor> = {};
      for (const o of g.outputs) {
        const v = env.get(o.name);
        if (!v) throw new ModelError(`${g.source}: graph output '${o.name}' was not computed`);
        result[o.name] = toHost(v);
      }
      return result;
    } finally {
      for (const name of [...owned]) release(name);
    }
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.consts.values()) v.drop();
    for (const t of this.derived.values()) t.dispose();
    this.consts.clear();
    this.derived.clear();
  }
}

let ready: Promise<string> | null = null;

async function initTf(): Promise<string> {
  tf.env().set('PROD', true);
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@tensorflow/tfjs-node');
    if (await tf.setBackend('tensorflow')) {
      await tf.ready();
      return 'tfjs-node';
    }
  } catch {
    // optional dependency not installed: fall back
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
    const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
    wasm.setWasmPaths(dir + path.sep);
    if (await tf.setBackend('wasm')) {
      await tf.ready();
      return 'wasm';
    }
  } catch {
    // fall back to the plain CPU backend
  }
  await tf.setBackend('cpu');
  await tf.ready();
  return 'cpu';
}

/** The tf.js backend (tfjs-node, else wasm, else cpu). */
export async function createTfjsBackend(): Promise<Backend> {
  ready ??= initTf();
  const kind = await ready;
  return {
    name: 'tfjs',
    detail: `tfjs ${tf.version.tfjs} (${kind})`,
    // every program holds its own re-laid-out weights; wasm memory is small (InceptionV3 ran out at 4)
    programCacheSize: kind === 'wasm' ? 1 : 2,
    compile: async (graph: Graph) => new TfjsCompiled(graph),
  };
}
