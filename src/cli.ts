// lrp-lens: the engine headless. `lrp-lens explain ...`, `lrp-lens bench ...`.
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join as joinPath } from 'node:path';
import { parseArgs } from 'node:util';
import { RulesConfig, parseRulesConfig } from './engine/config';
import { Explainer } from './explain/explainer';
import { Tensor } from './engine/graph/graph';
import { describeScale, mapScale, relevanceMap } from './engine/io/heatmap';
import { PreprocessOptions, RgbImage, inputBoundsFor, loadImageTensor } from './engine/io/image';
import { labelFor } from './engine/io/labels';
import { describeOptions } from './engine/io/preprocessing-spec';
import type { Region } from './engine/io/placement';
import { writeNpy } from './engine/io/npy';
import { explanationSummary, topPredictions } from './explain/summary';
import { BatchProgress, BatchRow, batchRowCsv, CSV_HEADER, csvLine, heatmapNames } from './explain/batch';

import { channelMask, conditionLayer, conditionalRelevance } from './explain/concepts';
import { CONCEPTS_USAGE, conceptsCommand, explainCondition, parseConditionArg } from './cli-concepts';
import { METHODS_USAGE, evaluateCommand, explainWithMethod, photoHeatmapPng, methodArg } from './cli-methods';
import {
  HEATMAP_OPTIONS,
  HEATMAP_USAGE,
  UsageError,
  folderImages,
  heatmapArgs,
  heatmapSummary,
  loadOptionsFrom,
  readInputNpy,
  joinNegativeNumbers,
  numberArg,
  parseSize,
  PREPROCESS_OPTIONS,
  PREPROCESS_USAGE,
  cliModelConfig,
  preprocessFor,
  rulesFrom,
} from './cli-args';

const USAGE = `usage:
  lrp-lens explain --model M.onnx|model.json (--image I.png | --input X.npy)
      [--target N] [--composite NAME] [--rules FILE.json] [--epsilon E] [--gamma G]
      [--init logit|one-hot] [--attention cp|attnlrp] [--batch-norm pass|affine] ${PREPROCESS_USAGE}
      [--labels FILE] [--out-relevance R.npy] [--out-heatmap H.png] [--out-json S.json] [--out-input X.npy]
      [--backend auto|onnxruntime|tfjs] [--stability] [--condition LAYER:c1,c2 | LAYER:topK]
      (--condition: the relevance through those channels of LAYER, a node name; with topK one
      map per channel, files named -c<channel>; shares in --out-json)
      ${HEATMAP_USAGE}
  lrp-lens explain --model M --images DIR --out DIR [the rule, preprocessing and heatmap flags above]
      (one heatmap PNG per image and summary.csv in --out)
  lrp-lens bench --model M [--composite NAME] [--runs N] [--backend ...] [--input X.npy]
      [--condition LAYER] (also times conditional maps of that layer)
${METHODS_USAGE}
${CONCEPTS_USAGE}`;

const EXPLAIN_OPTIONS = {
  model: { type: 'string' },
  image: { type: 'string' },
  images: { type: 'string' },
  out: { type: 'string' },
  input: { type: 'string' },
  target: { type: 'string' },
  composite: { type: 'string' },
  rules: { type: 'string' },
  epsilon: { type: 'string' },
  gamma: { type: 'string' },
  init: { type: 'string' },
  attention: { type: 'string' },
  'batch-norm': { type: 'string' },
  ...PREPROCESS_OPTIONS,
  labels: { type: 'string' },
  'out-input': { type: 'string' },
  'out-relevance': { type: 'string' },
  'out-heatmap': { type: 'string' },
  'out-json': { type: 'string' },
  backend: { type: 'string' },
  runs: { type: 'string' },
  method: { type: 'string' },
  layer: { type: 'string' },
  stability: { type: 'boolean' },
  condition: { type: 'string' },
  ...HEATMAP_OPTIONS,
} as const;

const NUMERIC_FLAGS = new Set(['--target', '--epsilon', '--gamma', '--runs', '--mean', '--std', '--heatmap-percentile', '--heatmap-gamma']);

function parseOptions(args: string[]) {
  return parseArgs({ args: joinNegativeNumbers(args, NUMERIC_FLAGS), options: EXPLAIN_OPTIONS, strict: true, allowPositionals: false });
}

async function explainCommand(args: string[]): Promise<void> {
  const { values } = parseOptions(args);
  if (values.images !== undefined || values.out !== undefined) return explainFolderCommand(values);
  if (!values.model) throw new UsageError('explain: --model is required');
  if (!values.image === !values.input) throw new UsageError('explain: give exactly one of --image or --input');
  const rawRules = rulesFrom(values);
  const rulesWhere = (values.rules as string | undefined) ?? 'rules';
  parseRulesConfig(rawRules, rulesWhere); // fail fast on a bad config, before loading anything
  const target = values.target === undefined ? undefined : numberArg('target', values.target);
  if (target !== undefined && (!Number.isInteger(target) || target < 0))
    throw new UsageError(`--target: expected a 0-based class index, got '${values.target}'`);
  const size = parseSize(values.size);
  const config = await cliModelConfig(values, values.model);
  const labels = config.labels;
  const picture = heatmapArgs(values);
  if (values.input && values['heatmap-mode'] !== undefined && picture.view !== 'alone')
    throw new UsageError(`--heatmap-mode ${picture.view} draws over the photo: it needs --image (with --input the heatmap is drawn alone)`);

  const npyInput = values.input ? readInputNpy(values.input) : undefined;
  const t0 = performance.now();
  const ex = await Explainer.load(values.model, loadOptionsFrom(values, npyInput, config.preprocessing.size));
  try {
    if (size && (size[0] !== ex.input.width || size[1] !== ex.input.height))
      throw new UsageError(
        `--size ${size[0]}x${size[1]}: the model '${values.model}' takes ${ex.input.width}x${ex.input.height} inputs`,
      );
    let x: Tensor;
    let original: RgbImage | undefined;
    let region: Region | undefined;
    let pre: PreprocessOptions | undefined;
    if (values.image) {
      pre = preprocessFor(config, ex);
      const r = await loadImageTensor(values.image, pre);
      x = r.tensor;
      original = r.original;
      region = r.region;
    } else {
      x = npyInput as Tensor;
      if (values.preset || values.mean || values.std) pre = preprocessFor(config, ex);
    }
    if (values['out-input']) writeFileSync(values['out-input'], writeNpy(x));
    if (rawRules.inputBounds === undefined && (pre || ex.input.channels === 1 || ex.input.channels === 3))
      rawRules.inputBounds = inputBoundsFor(pre ?? preprocessFor(config, ex));
    const sources = {
      preprocessing: values.input ? `${values.input} (already preprocessed)` : config.preprocessingSource,
      labels: config.labelsSource,
      description: pre && values.image ? describeOptions(pre) : 'none (the --input array is fed as it is)',
    };
    let rules: RulesConfig = parseRulesConfig(rawRules, rulesWhere);
    const method = methodArg(values.method, rules);
    if (method && typeof method === 'object') rules = method.lrp;

    await ex.forward(x); // creates the forward session (counted as loading)
    const loadMs = performance.now() - t0;
    const tf = performance.now();
    await ex.forward(x);
    const forwardMs = performance.now() - tf;
    if (typeof method === 'string' && values.stability)
      throw new UsageError(`explain: --stability measures LRP explanations, not --method ${method}`);
    if (typeof method === 'string')
      return await explainWithMethod(ex, x, {
        method,
        target,
        layer: values.layer,
        labels,
        original,
        region,
        sources,
        what: (values.image ?? values.input) as string,
        outRelevance: values['out-relevance'],
        outHeatmap: values['out-heatmap'],
        picture,
        outJson: values['out-json'],
        loadMs,
        forwardMs,
      });
    await ex.releaseForward(); // timed only: the LRP program computes the logits itself
    const e = await ex.explain(x, { target, rules });
    if (values.condition !== undefined) {
      const cond = await explainCondition(ex, x, parseConditionArg(values.condition), {
        rules,
        target: e.target,
        outRelevance: values['out-relevance'],
        outHeatmap: values['out-heatmap'],
        picture,
        original,
        region,
      });
      const summary = {
        ...explanationSummary({ model: values.model, backend: ex.backendDetail, rules, labels, explanation: e, timings: { loadMs, forwardMs, lrpMs: e.timings.lrpMs }, sources }),
        condition: cond,
      };
      if (values['out-json']) writeFileSync(values['out-json'], JSON.stringify(summary, null, 2) + '\n');
      for (const m of cond.maps)
        process.stdout.write(
          `${values.image ?? values.input}: target ${e.target} (${labelFor(labels, e.target)}), ${cond.layer} channel${m.channels.length === 1 ? '' : 's'} ${m.channels.join(',')}: ` +
            `relevance ${m.relevance.toFixed(4)} (${(m.share * 100).toFixed(1)}% of the layer's ${cond.layerRelevance.toFixed(4)}), input relevance sum ${m.inputRelevanceSum.toFixed(4)}\n`,
        );
      return;
    }

    if (values['out-relevance']) writeFileSync(values['out-relevance'], writeNpy(e.relevance));
    const map = relevanceMap(e.relevance, e.layout);
    if (values['out-heatmap']) writeFileSync(values['out-heatmap'], await photoHeatmapPng(original, map, region, picture));
    const summary = explanationSummary({
      model: values.model,
      backend: ex.backendDetail,
      rules,
      labels,
      explanation: e,
      timings: { loadMs, forwardMs, lrpMs: e.timings.lrpMs },
      sources,
    });
    if (values['out-heatmap']) summary.heatmap = heatmapSummary(map, picture);
    let stabilityNote = '';
    if (values.stability) {
      const { ulpRelL2, draws, unstable } = await ex.stability(x, e, { rules });
      summary.stability = { ulpRelL2, draws };
      stabilityNote = `, one-ulp input noise moves it by ${ulpRelL2.toExponential(1)}`;
      if (unstable)
        process.stderr.write(
          `warning: ${values.image ?? values.input}: one float32 ulp of input noise moves the relevance by ` +
            `${(ulpRelL2 * 100).toPrecision(2)}% (relative L2): float32 rounding shapes this map; ` +
            `a larger epsilon or a composite with positive denominators (epsilon-plus-flat) is steadier\n`,
        );
    }
    if (values['out-json']) writeFileSync(values['out-json'], JSON.stringify(summary, null, 2) + '\n');
    process.stdout.write(
      `${values.image ?? values.input}: target ${e.target} (${labelFor(labels, e.target)}), logit ${e.logit.toFixed(4)}, ` +
        `relevance sum ${e.relevanceSum.toFixed(4)}${stabilityNote}, ${rules.composite}, ${e.timings.lrpMs.toFixed(1)} ms\n`,
    );
    if (values['out-heatmap'])
      process.stdout.write(`heatmap ${values['out-heatmap']} (${original ? picture.view : 'alone'}): ${describeScale(mapScale(map.data, picture.percentile), picture.gamma)}\n`);
  } finally {
    await ex.dispose();
  }
}

/**
 * `explain --images DIR --out DIR`: every image of a folder with one Explainer (the sessions and
 * the compiled LRP program are reused), one blended heatmap PNG each and a summary.csv. A failed
 * image gets a row with its error and the batch goes on; the exit code is non-zero if any failed.
 */
async function explainFolderCommand(values: ReturnType<typeof parseOptions>['values']): Promise<void> {
  if (!values.model) throw new UsageError('explain: --model is required');
  if (!values.images || !values.out) throw new UsageError('explain: --images DIR needs --out DIR (and --out needs --images)');
  for (const f of ['image', 'input', 'out-relevance', 'out-heatmap', 'out-json', 'stability'] as const)
    if (values[f] !== undefined) throw new UsageError(`explain: --${f} cannot be combined with --images`);
  const dir = values.images;
  const outDir = values.out;
  const files = folderImages(dir, outDir);
  const rawRules = rulesFrom(values);
  const rulesWhere = (values.rules as string | undefined) ?? 'rules';
  parseRulesConfig(rawRules, rulesWhere);
  const target = values.target === undefined ? undefined : numberArg('target', values.target);
  if (target !== undefined && (!Number.isInteger(target) || target < 0))
    throw new UsageError(`--target: expected a 0-based class index, got '${values.target}'`);
  const size = parseSize(values.size);
  const config = await cliModelConfig(values, values.model);
  const labels = config.labels;
  const picture = heatmapArgs(values);
  mkdirSync(outDir, { recursive: true });

  const t0 = performance.now();
  const ex = await Explainer.load(values.model, loadOptionsFrom(values, undefined, config.preprocessing.size));
  try {
    if (size && (size[0] !== ex.input.width || size[1] !== ex.input.height))
      throw new UsageError(`--size ${size[0]}x${size[1]}: the model '${values.model}' takes ${ex.input.width}x${ex.input.height} inputs`);
    if (target !== undefined && target >= ex.numClasses)
      throw new UsageError(`--target ${target}: the model has ${ex.numClasses} classes (0 to ${ex.numClasses - 1})`);
    const pre = preprocessFor(config, ex);
    if (rawRules.inputBounds === undefined) rawRules.inputBounds = inputBoundsFor(pre);
    const rules = parseRulesConfig(rawRules, rulesWhere);
    const csv = joinPath(outDir, 'summary.csv');
    writeFileSync(csv, csvLine(CSV_HEADER));
    const names = heatmapNames(files);
    const progress = new BatchProgress(process.stderr, files.length);
    let failed = 0;
    for (let i = 0; i < files.length; i++) {
      const file = files[i];
      progress.start(file);
      const t = performance.now();
      let row: BatchRow;
      try {
        const { tensor, original, region } = await loadImageTensor(joinPath(dir, file), pre);
        const e = await ex.explain(tensor, { target, rules, layers: false });
        const png = await photoHeatmapPng(original, relevanceMap(e.relevance, e.layout), region, picture);
        writeFileSync(joinPath(outDir, names[i]), png);
        const [top] = topPredictions(e.logits, labels, 1);
        row = { file, label: top.label, score: top.score, target: e.target, relevanceSum: e.relevanceSum, timeMs: performance.now() - t, heatmap: names[i] };
        progress.finish(file, `${top.label} ${top.score.toFixed(3)}, ${row.timeMs.toFixed(0)} ms`);
      } catch (err) {
        failed++;
        const msg = ((err as Error)?.message ?? String(err)).split('\n')[0];
        row = { file, timeMs: performance.now() - t, error: msg };
        progress.finish(file, `error: ${msg}`, true);
      }
      appendFileSync(csv, batchRowCsv(row));
    }
    progress.end();
    const totalS = (performance.now() - t0) / 1000;
    process.stdout.write(
      `${files.length - failed} of ${files.length} images explained (${rules.composite}, ${ex.backendDetail}) in ${totalS.toFixed(1)} s: heatmaps and summary.csv in ${outDir}\n`,
    );
    if (failed) throw new Error(`${failed} of ${files.length} images failed; their errors are in ${csv}`);
  } finally {
    await ex.dispose();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function benchCommand(args: string[]): Promise<void> {
  const { values } = parseOptions(args);
  if (!values.model) throw new UsageError('bench: --model is required');
  const runs = values.runs === undefined ? 7 : numberArg('runs', values.runs) ?? 7;
  if (!Number.isInteger(runs) || runs < 1) throw new UsageError(`--runs: expected a positive integer, got '${values.runs}'`);
  const raw = rulesFrom(values);
  if (raw.composite === undefined) raw.composite = 'epsilon-plus-flat';
  const npyInput = values.input ? readInputNpy(values.input) : undefined;
  const ex = await Explainer.load(values.model, loadOptionsFrom(values, npyInput));
  try {
    let x: Tensor;
    if (npyInput) x = npyInput;
    else {
      const data = new Float32Array(ex.input.dims.reduce((a, b) => a * b, 1));
      let seed = 12345;
      for (let i = 0; i < data.length; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        data[i] = (seed / 2 ** 32) * 4 - 2;
      }
      x = { dtype: 'float32', dims: [...ex.input.dims], data };
    }
    if (raw.inputBounds === undefined) {
      const c = ex.input.channels || 1;
      raw.inputBounds = { low: new Array(c).fill(-2.2), high: new Array(c).fill(2.7) };
    }
    const rules = parseRulesConfig(raw, (values.rules as string | undefined) ?? 'rules');
    // lrp: the input relevance alone (what the Python LRP libraries compute);
    // lrpWithLayers: plus every layer's relevance sums, as `explain` and the panel report them
    const fwd: number[] = [];
    const lrp: number[] = [];
    const lrpLayers: number[] = [];
    const timed = async (f: () => Promise<unknown>, into: number[]) => {
      const t = performance.now();
      await f();
      into.push(performance.now() - t);
    };
    // in blocks, one session alive at a time (as when explaining, which needs no forward-only
    // session); interleaved, an idle session's spinning threads would also slow the other one
    await ex.forward(x); // warm-up
    for (let i = 0; i < runs; i++) await timed(() => ex.forward(x), fwd);
    await ex.releaseForward();
    await ex.explain(x, { rules, layers: false }); // warm-up (compiles the program)
    for (let i = 0; i < runs; i++) await timed(() => ex.explain(x, { rules, layers: false }), lrp);
    const peakRssMb = process.resourceUsage().maxRSS / 1024;
    await ex.explain(x, { rules }); // warm-up of the program with per-layer sums
    for (let i = 0; i < runs; i++) await timed(() => ex.explain(x, { rules }), lrpLayers);
    const condition = values.condition === undefined ? undefined : await benchCondition(ex, x, rules, values.condition, runs);
    const forwardMs = median(fwd);
    const lrpMs = median(lrp);
    const lrpWithLayersMs = median(lrpLayers);
    const out = {
      model: values.model,
      composite: rules.composite,
      backend: ex.backendDetail,
      runs,
      forwardMs: round(forwardMs),
      lrpMs: round(lrpMs),
      lrpOverForward: round(lrpMs / forwardMs),
      lrpWithLayersMs: round(lrpWithLayersMs),
      lrpWithLayersOverForward: round(lrpWithLayersMs / forwardMs),
      peakRssMb: round(peakRssMb),
      peakRssWithLayersMb: round(process.resourceUsage().maxRSS / 1024),
      ...(condition ? { condition: { ...condition, oneOverLrp: round(condition.oneMs / lrpMs) } } : {}),
    };
    process.stdout.write(JSON.stringify(out) + '\n');
  } finally {
    await ex.dispose();
  }
}

/**
 * `bench --condition LAYER`: one conditional map (issue 12) against the LRP pass, and eight
 * channels in one batched run against eight single runs. Medians of `runs`; the programs are
 * compiled once before timing.
 */
async function benchCondition(ex: Explainer, x: Tensor, rules: RulesConfig, layer: string, runs: number) {
  const { channels } = conditionLayer(ex, layer);
  const eight = Array.from({ length: 8 }, (_, i) => channelMask(channels, [i % channels]));
  const one = (masks: Float32Array[], maxBatch: number) => conditionalRelevance(ex, x, { rules, layer, masks, maxBatch });
  const timeIt = async (f: () => Promise<unknown>): Promise<number> => {
    await f(); // warm-up: compiles the program
    const ts: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      await f();
      ts.push(performance.now() - t);
    }
    return median(ts);
  };
  const oneMs = await timeIt(() => one([eight[0]], 1));
  const singlesMs = await timeIt(() => one(eight, 1));
  const batchedMs = await timeIt(() => one(eight, 8));
  return { layer, channels, oneMs: round(oneMs), eightSinglesMs: round(singlesMs), eightBatchedMs: round(batchedMs), batchedOverSingles: round(batchedMs / singlesMs) };
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === 'explain') await explainCommand(rest);
    else if (cmd === 'bench') await benchCommand(rest);
    else if (cmd === 'evaluate') await evaluateCommand(rest);
    else if (cmd === 'concepts') await conceptsCommand(rest);
    else if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
      process.stdout.write(USAGE + '\n');
      return cmd === undefined ? 2 : 0;
    } else throw new UsageError(`unknown command '${cmd}'\n${USAGE}`);
    return 0;
  } catch (e) {
    const err = e as Error;
    const msg = (err && err.message ? err.message : String(e)).split('\n')[0];
    process.stderr.write(`lrp-lens: ${msg}\n`);
    if (process.env.LRP_LENS_DEBUG && err.stack) process.stderr.write(err.stack + '\n');
    return err instanceof UsageError ? 2 : 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
