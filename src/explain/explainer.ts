// The engine's entry point: load a model once, then explain inputs under any rule config.
// Compiled LRP programs are cached per (rules, maps) so a second explanation is fast.
import { readFile } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { Backend, BackendChoice, CompiledGraph } from '../backends/backend';
import { createBackend } from '../backends';
import { RulesConfig } from '../engine/config';
import { canonize } from '../engine/graph/canonize';
import { Graph, ModelError, Tensor, i64, numel } from '../engine/graph/graph';
import { LRP_LOGITS, LRP_RELEVANCE, LRP_TARGET, LRP_TARGET_USED, LrpProgram, Shapes, compileLrp } from '../engine/compile/lrp';
import { importOnnx } from '../engine/import/onnx';
import { inferShapes } from '../engine/graph/shapes';
import { Explanation, LayerRelevance, ModelInputInfo } from '../engine/types';
import { Attribution, AttributeOptions, type TokenLayout, attribute, patchTokenLayout } from './methods';
import { batchedForwardGraph } from '../engine/compile/batched-forward';
import { type CacheLimits, ProgramCache, weightBytes } from './program-cache';
import { STABILITY_DRAWS, type Stability, UNSTABLE_REL_L2, ulpSensitivity } from './stability';

export interface LoadOptions {
  backend?: BackendChoice;
  /** Concrete input shape (batch 1) for a model whose input has symbolic dimensions. */
  inputDims?: number[];
  /** Input width and height for a model whose spatial dimensions are symbolic. */
  inputSize?: { width: number; height: number };
  /** Limits of the compiled-program cache (defaults: 6 programs, 640 MiB of their weights). */
  programCache?: Partial<CacheLimits>;
}

/** Fix the symbolic dimensions of the (image) input: batch 1, the rest from the options. */
function fixInputDims(graph: Graph, modelPath: string, opts: LoadOptions): void {
  const inp = graph.inputs[0];
  if (!inp) return;
  const rank = inp.shape.length;
  const spatial = rank === 4 ? (graph.layout === 'NCHW' ? { h: 2, w: 3 } : { h: 1, w: 2 }) : undefined;
  inp.shape = inp.shape.map((d, i) => {
    const given = opts.inputDims?.[i];
    if (typeof d === 'number') {
      if (given !== undefined && i > 0 && given !== d)
        throw new ModelError(
          `${modelPath}: input shape [${opts.inputDims?.join(', ')}] does not match the model's input '${inp.name}' [${inp.shape.join(', ')}]`,
        );
      return d;
    }
    if (i === 0) return 1; // explanations run with batch 1
    if (given !== undefined) return given;
    if (spatial && opts.inputSize && i === spatial.h) return opts.inputSize.height;
    if (spatial && opts.inputSize && i === spatial.w) return opts.inputSize.width;
    // an open channel axis of an image input (Optimum exports leave it open): RGB
    if (spatial && i === (graph.layout === 'NCHW' ? 1 : 3)) return 3;
    const what = spatial && (i === spatial.h || i === spatial.w) ? 'its height and width' : `axis ${i}`;
    throw new ModelError(
      `${modelPath}: input '${inp.name}' leaves ${what} open ('${d}'); give the input size (--size WxH, or an --input .npy of the shape wanted; in VS Code the lrpLens.preprocessing size)`,
    );
  });
}

export interface ExplainOptions {
  /** 0-based class index; default: the top class. */
  target?: number;
  rules: RulesConfig;
  /** Also return every layer's channel-summed relevance map. */
  maps?: boolean;
  /**
   * Per-layer relevance sums (default true). Off, only the input relevance is computed (as the
   * Python LRP libraries do) and `layers` is empty.
   */
  layers?: boolean;
}

/** Read a model file (ONNX or tf.js model.json) into the engine's graph. */
export async function loadGraph(modelPath: string): Promise<Graph> {
  if (!existsSync(modelPath)) throw new ModelError(`${modelPath}: model file not found`);
  if (statSync(modelPath).isDirectory()) throw new ModelError(`${modelPath}: is a folder, not a model file`);
  if (basename(modelPath).toLowerCase().endsWith('.json')) {
    const { importTfjs } = await import('../engine/import/tfjs');
    return importTfjs(modelPath);
  }
  return importOnnx(new Uint8Array(await readFile(modelPath)), modelPath);
}

/** Programs kept per explainer unless the backend says fewer (LRP per rule config, gradients, batches). */
const CACHE_COUNT = 6;
/**
 * Weight bytes the kept programs may hold together (onnxruntime's sessions take a few times that);
 * the newest program always stays. A ResNet-50 LRP program holds 170 to 270 MB.
 */
const CACHE_BYTES = 640 * 2 ** 20;

export class Explainer {
  /** Compiled programs; an LRP program keeps its layer table (its graph is freed once compiled). */
  private readonly programs: ProgramCache<LrpProgram['layers'] | undefined>;
  private forwardSession: Promise<CompiledGraph> | undefined;
  /** Whether the batched forward graph works for this model (undefined: not tried yet). */
  private batchable: boolean | undefined;

  private constructor(
    readonly modelPath: string,
    readonly graph: Graph,
    readonly shapes: Shapes,
    readonly input: ModelInputInfo,
    readonly numClasses: number,
    private readonly backend: Backend,
    cache: Partial<CacheLimits> = {},
  ) {
    this.programs = new ProgramCache({
      count: cache.count ?? backend.programCacheSize ?? CACHE_COUNT,
      bytes: cache.bytes ?? CACHE_BYTES,
    });
  }

  /** How many compiled programs are kept, and the weight bytes they hold. */
  get cacheUsage(): { programs: number; bytes: number } {
    return { programs: this.programs.size, bytes: this.programs.bytes };
  }

  get backendName(): string {
    return this.backend.name;
  }

  get backendDetail(): string {
    return this.backend.detail;
  }

  private tokens: TokenLayout | null | undefined;

  /** A vision transformer's patch tokens (leading tokens, patch grid); null for other models. */
  get tokenLayout(): TokenLayout | null {
    if (this.tokens === undefined) this.tokens = patchTokenLayout(this.graph, this.shapes);
    return this.tokens;
  }

  /** Whether the network has a Softmax inside it (attention), where the rules' `attention` key applies. */
  get hasAttention(): boolean {
    return this.graph.nodes.some((n) => n.opType === 'Softmax');
  }

  static async load(modelPath: string, opts: LoadOptions = {}): Promise<Explainer> {
    const graph = await loadGraph(modelPath);
    // explanations run with batch 1 and concrete sizes: fix symbolic axes so shape arithmetic folds away
    if (graph.inputs.length === 1) fixInputDims(graph, modelPath, opts);
    let shapes = inferShapes(graph, 1);
    canonize(graph, (t) => shapes.get(t)?.dims);
    shapes = inferShapes(graph, 1);
    if (graph.inputs.length !== 1)
      throw new ModelError(
        `${modelPath}: the model has ${graph.inputs.length} inputs (${graph.inputs.map((i) => i.name).join(', ')}); LRP Lens explains models with one image input`,
      );
    const inp = graph.inputs[0];
    const dims = shapes.get(inp.name)?.dims;
    if (!dims) throw new ModelError(`${modelPath}: no shape known for the input '${inp.name}'`);
    inp.shape = [...dims];
    const out = graph.outputs[0];
    const outDims = shapes.get(out.name)?.dims ?? [];
    const numClasses = numel(outDims.slice(1));
    const [c, h, w] =
      dims.length === 4 ? (graph.layout === 'NCHW' ? [dims[1], dims[2], dims[3]] : [dims[3], dims[1], dims[2]]) : [0, 0, 0];
    const input: ModelInputInfo = { name: inp.name, dims, layout: graph.layout, channels: c, height: h, width: w };
    const backend = await createBackend(opts.backend ?? 'auto');
    return new Explainer(modelPath, graph, shapes, input, numClasses, backend, opts.programCache);
  }

  private checkInput(x: Tensor): void {
    if (x.dtype !== 'float32')
      throw new ModelError(`${this.modelPath}: input '${this.input.name}' must be float32, got ${x.dtype}`);
    if (x.dims.join(',') !== this.input.dims.join(','))
      throw new ModelError(
        `${this.modelPath}: input shape [${x.dims.join(', ')}] does not match the model's input '${this.input.name}' [${this.input.dims.join(', ')}] (${this.input.layout})`,
      );
  }

  /** Logits of the canonical model (final softmax removed). */
  async forward(x: Tensor): Promise<Float32Array> {
    this.checkInput(x);
    if (!this.forwardSession) {
      const g = { ...this.graph, outputs: [this.graph.outputs[0]] };
      this.forwardSession = this.backend.compile(g).catch((e: unknown) => {
        this.forwardSession = undefined;
        throw new ModelError(`${this.modelPath}: ${this.backend.name} could not load the model: ${(e as Error).message ?? e}`);
      });
    }
    const s = await this.forwardSession;
    const out = await s.run({ [this.input.name]: x });
    return out[this.graph.outputs[0].name].data as Float32Array;
  }

  /**
   * Free the forward-only session (the next `forward` builds it again). Callers that ran a forward
   * pass only to time it release it before explaining, so the two sessions never coexist.
   */
  async releaseForward(): Promise<void> {
    const s = this.forwardSession;
    this.forwardSession = undefined;
    if (s) await s.then((c) => c.dispose()).catch(() => undefined);
  }

  private async program(rules: RulesConfig, maps: boolean, stats = true): Promise<{ layers: LrpProgram['layers']; compiled: CompiledGraph }> {
    const key = JSON.stringify({ lrp: rules, maps, stats });
    const { compiled, meta: layers } = await this.programs.get(key, () => {
      // the program's graph (its modified weights) is not held past compile(): a backend that
      // serialises it can let it go once its session is built
      const program = compileLrp(this.graph, this.shapes, rules, { maps, stats });
      return {
        meta: program.layers,
        bytes: weightBytes(program.graph),
        compiled: this.backend.compile(program.graph).catch((e: unknown) => {
          throw new ModelError(
            `${this.modelPath}: ${this.backend.name} could not build the LRP program (composite ${rules.composite}): ${(e as Error).message ?? e}`,
          );
        }),
      };
    });
    if (!layers) throw new Error(`internal: no layer table for the program ${key}`);
    return { layers, compiled };
  }

  /** Compile (or fetch from the cache) the program for a config, e.g. to warm up. */
  async prepare(rules: RulesConfig, maps = false, layers = true): Promise<void> {
    await this.program(rules, maps, layers);
  }

  async explain(x: Tensor, opts: ExplainOptions): Promise<Explanation> {
    this.checkInput(x);
    const t = opts.target;
    if (t !== undefined && (!Number.isInteger(t) || t < 0 || t >= this.numClasses))
      throw new ModelError(
        `${this.modelPath}: target ${t} is out of range (the model has ${this.numClasses} classes: 0 to ${this.numClasses - 1})`,
      );
    const { layers: compiledLayers, compiled } = await this.program(opts.rules, !!opts.maps, opts.layers !== false);
    const t0 = performance.now();
    const out = await compiled.run({ [this.input.name]: x, [LRP_TARGET]: i64([1], [t ?? -1]) });
    const lrpMs = performance.now() - t0;
    const logits = out[LRP_LOGITS].data as Float32Array;
    const target = Number(out[LRP_TARGET_USED].data[0]);
    const relevance: Tensor = { dtype: 'float32', dims: [...this.input.dims], data: out[LRP_RELEVANCE].data };
    let relevanceSum = 0;
    for (const v of relevance.data as Float32Array) relevanceSum += v;
    const layers: LayerRelevance[] = compiledLayers.map((l) => {
      const sum = Number(out[l.sumOutput].data[0]);
      const pos = Number(out[l.posOutput].data[0]);
      const layer: LayerRelevance = {
        name: l.name,
        opType: l.opType,
        rule: l.rule,
        outputShape: l.outputShape,
        relevanceSum: sum,
        positiveSum: pos,
        negativeSum: sum - pos,
      };
      if (l.mapOutput) {
        const m = out[l.mapOutput];
        const [height, width] = m.dims.slice(-2);
        layer.map = { height, width, data: m.data as Float32Array };
      }
      if (l.channelOutput) layer.channelSums = out[l.channelOutput].data as Float32Array;
      if (l.tokenOutput) layer.tokenSums = out[l.tokenOutput].data as Float32Array;
      return layer;
    });
    return {
      relevance,
      layout: this.input.layout,
      logits,
      target,
      logit: logits[target],
      relevanceSum,
      layers,
      timings: { lrpMs },
    };
  }

  /**
   * How far one float32 ulp of input noise moves the explanation `base` of `x` (stability.ts):
   * `draws` more explanations of the same target under the same options.
   */
  async stability(x: Tensor, base: Explanation, opts: ExplainOptions, draws = STABILITY_DRAWS): Promise<Stability> {
    const o = { ...opts, target: base.target };
    const ulpRelL2 = await ulpSensitivity(
      async (v) => (await this.explain(v, o)).relevance.data as Float32Array,
      x,
      draws,
      base.relevance.data as Float32Array,
    );
    return { ulpRelL2, draws, unstable: ulpRelL2 >= UNSTABLE_REL_L2 };
  }

  /** Compile an engine-built graph once per key on this explainer's backend (see methods.ts). */
  async compileCached(key: string, build: () => Graph, what: string): Promise<CompiledGraph> {
    const program = await this.programs.get(key, () => {
      const g = build();
      return {
        meta: undefined,
        bytes: weightBytes(g),
        compiled: this.backend.compile(g).catch((e: unknown) => {
          throw new ModelError(`${this.modelPath}: ${this.backend.name} could not build ${what}: ${(e as Error).message ?? e}`);
        }),
      };
    });
    return program.compiled;
  }

  /**
   * Attribution under any method: LRP ({lrp: rules}), gradient, gradient-input, gradcam, cam or
   * random. Returns an [H, W] map and a tensor in the input layout (see methods.ts).
   */
  async attribute(x: Tensor, opts: AttributeOptions): Promise<Attribution> {
    this.checkInput(x);
    return attribute(this, x, opts, () => this.forward(x));
  }

  /**
   * Logits of several inputs (each batch 1, the model's layout), in forward passes of up to
   * `maxBatch` inputs where the graph allows a larger batch, else one by one.
   */
  async forwardBatch(xs: Tensor[], maxBatch = 32): Promise<Float32Array[]> {
    for (const x of xs) this.checkInput(x);
    const per = numel(this.input.dims);
    const B = Math.max(1, Math.min(xs.length, maxBatch, Math.floor(4e6 / per)));
    if (B > 1 && this.batchable !== false) {
      try {
        const out = await this.runBatched(xs, B);
        if (this.batchable === undefined) {
          // first use: the batched graph must agree with the batch-1 forward pass
          const ref = await this.forward(xs[0]);
          let err = 0;
          let scale = 1e-6;
          for (let i = 0; i < ref.length; i++) {
            err = Math.max(err, Math.abs(ref[i] - out[0][i]));
            scale = Math.max(scale, Math.abs(ref[i]));
          }
          this.batchable = err <= 1e-3 * scale;
        }
        if (this.batchable) return out;
      } catch {
        this.batchable = false;
      }
    }
    const res: Float32Array[] = [];
    for (const x of xs) res.push(Float32Array.from(await this.forward(x)));
    return res;
  }

  private async runBatched(xs: Tensor[], B: number): Promise<Float32Array[]> {
    const compiled = await this.compileCached(
      `forward-batch-${B}`,
      () => batchedForwardGraph(this.graph, this.shapes, B),
      `the forward graph with batch ${B}`,
    );
    const per = numel(this.input.dims);
    const outName = this.graph.outputs[0].name;
    const res: Float32Array[] = [];
    for (let s = 0; s < xs.length; s += B) {
      const data = new Float32Array(B * per);
      for (let i = 0; i < B; i++) data.set(xs[Math.min(s + i, xs.length - 1)].data as Float32Array, i * per);
      const out = await compiled.run({ [this.input.name]: { dtype: 'float32', dims: [B, ...this.input.dims.slice(1)], data } });
      const y = out[outName].data as Float32Array;
      const k = y.length / B;
      for (let i = 0; i < B && s + i < xs.length; i++) res.push(y.slice(i * k, (i + 1) * k));
    }
    return res;
  }

  async dispose(): Promise<void> {
    await this.programs.clear();
    await this.releaseForward();
  }
}
