// The command line's concepts: `explain --condition LAYER:c1,c2` (the input relevance of what
// flows through those channels of LAYER) and `--condition LAYER:topK` (one map per top channel).
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { RulesConfig, parseRulesConfig } from './engine/config';
import { inputBoundsFor, loadImageTensor, type RgbImage } from './engine/io/image';
import type { Region } from './engine/io/placement';
import { BatchProgress } from './explain/batch';
import {
  ATLAS_CACHE_FILE,
  Box,
  atlasKey,
  rankChannels,
  readAtlasCache,
  referenceCrops,
  scanImages,
  writeAtlasCache,
} from './explain/concept-atlas';
import { Tensor } from './engine/graph/graph';
import { relevanceMap, type BlendOptions } from './engine/io/heatmap';
import { writeNpy } from './engine/io/npy';
import { Explainer } from './explain/explainer';
import { channelMask, conditionLayer, conditionalRelevance, topChannels } from './explain/concepts';
import {
  PREPROCESS_OPTIONS,
  UsageError,
  Values,
  cliModelConfig,
  folderImages,
  intArg,
  joinNegativeNumbers,
  loadOptionsFrom,
  preprocessFor,
  rulesFrom,
} from './cli-args';
import { photoHeatmapPng } from './cli-methods';

export interface ConditionArg {
  layer: string;
  /** The channels conditioned on together (one map), or undefined for `top`. */
  channels?: number[];
  /** `topK`: one map for each of the K channels with the most relevance at the layer. */
  top?: number;
}

/** `LAYER:c1,c2` or `LAYER:topK` (the layer name may itself contain ':'; the last one splits). */
export function parseConditionArg(v: string): ConditionArg {
  const at = v.lastIndexOf(':');
  const layer = at > 0 ? v.slice(0, at) : '';
  const what = at > 0 ? v.slice(at + 1).trim() : '';
  if (!layer || !what) throw new UsageError(`--condition: expected LAYER:c1,c2 or LAYER:topK, got '${v}'`);
  const top = /^top(\d+)$/i.exec(what);
  if (top) {
    const k = Number(top[1]);
    if (k < 1) throw new UsageError(`--condition: top needs a count of at least 1, got '${what}'`);
    return { layer, top: k };
  }
  const channels = what.split(',').map((s) => Number(s.trim()));
  if (channels.some((c) => !Number.isInteger(c) || c < 0))
    throw new UsageError(`--condition: expected channel indices (0-based) or topK after '${layer}:', got '${what}'`);
  return { layer, channels };
}

/** `name.png` -> `name-c12.png`. */
export function channelFile(file: string, channel: number): string {
  const dot = file.lastIndexOf('.');
  const slash = Math.max(file.lastIndexOf('/'), file.lastIndexOf('\\'));
  return dot > slash ? `${file.slice(0, dot)}-c${channel}${file.slice(dot)}` : `${file}-c${channel}`;
}

export interface ConditionSummary {
  layer: string;
  opType: string;
  /** Relevance at the layer's output, all channels (the share's denominator). */
  layerRelevance: number;
  channels: number;
  batched: boolean;
  maps: {
    channels: number[];
    /** Relevance at the layer through these channels. */
    relevance: number;
    /** relevance / layerRelevance. */
    share: number;
    /** Sum of the conditional input relevance (equals `relevance` up to the rules' leaks below the layer). */
    inputRelevanceSum: number;
    relevanceFile?: string;
    heatmapFile?: string;
  }[];
}

/**
 * Run the condition, write its maps (`--out-relevance`/`--out-heatmap` as given for a channel set,
 * one suffixed file per channel for topK) and return the summary for the JSON.
 */
export async function explainCondition(
  ex: Explainer,
  x: Tensor,
  arg: ConditionArg,
  o: {
    rules: RulesConfig;
    target?: number;
    outRelevance?: string;
    outHeatmap?: string;
    /** How the heatmaps are drawn (--heatmap-mode, --heatmap-percentile, ...). */
    picture?: BlendOptions;
    original?: RgbImage;
    /** The part of the photo the model saw. */
    region?: Region;
  },
): Promise<ConditionSummary> {
  let info;
  try {
    info = conditionLayer(ex, arg.layer);
  } catch (e) {
    throw new UsageError(`--condition: ${(e as Error).message}`);
  }
  const C = info.channels;
  let sets: number[][];
  if (arg.top !== undefined) {
    // the channels' relevance at the layer, from one all-channel run
    const probe = await conditionalRelevance(ex, x, { rules: o.rules, target: o.target, layer: arg.layer, masks: [channelMask(C, range(C))] });
    sets = topChannels(probe.channelRelevance, Math.min(arg.top, C)).map((c) => [c]);
  } else {
    for (const c of arg.channels ?? [])
      if (c >= C) throw new UsageError(`--condition: channel ${c} is out of range: layer '${info.name}' has ${C} channels (0 to ${C - 1})`);
    sets = [arg.channels ?? []];
  }
  const res = await conditionalRelevance(ex, x, { rules: o.rules, target: o.target, layer: arg.layer, masks: sets.map((s) => channelMask(C, s)) });
  const perChannel = arg.top !== undefined;
  const maps: ConditionSummary['maps'] = [];
  for (let k = 0; k < sets.length; k++) {
    const m = res.maps[k];
    let inputRelevanceSum = 0;
    for (const v of m.relevance.data as Float32Array) inputRelevanceSum += v;
    const entry: ConditionSummary['maps'][number] = {
      channels: sets[k],
      relevance: m.conditionRelevance,
      share: res.layerRelevance === 0 ? 0 : m.conditionRelevance / res.layerRelevance,
      inputRelevanceSum,
    };
    if (o.outRelevance) {
      entry.relevanceFile = perChannel ? channelFile(o.outRelevance, sets[k][0]) : o.outRelevance;
      writeFileSync(entry.relevanceFile, writeNpy(m.relevance));
    }
    if (o.outHeatmap) {
      entry.heatmapFile = perChannel ? channelFile(o.outHeatmap, sets[k][0]) : o.outHeatmap;
      const map = relevanceMap(m.relevance, ex.input.layout);
      writeFileSync(entry.heatmapFile, await photoHeatmapPng(o.original, map, o.region, o.picture));
    }
    maps.push(entry);
  }
  return { layer: info.name, opType: info.opType, layerRelevance: res.layerRelevance, channels: C, batched: res.batched, maps };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

export const CONCEPTS_USAGE = `  lrp-lens concepts --model M --images DIR --layer LAYER --out DIR
      [--top K] [--channels c1,c2] [--per-channel N] [the rule and preprocessing flags of explain]
      (relevance maximisation: for each of the K channels of LAYER with the most relevance (or the
      given channels), the N images where it carries the most relevance for their predicted class,
      with the crop where its conditional relevance sits: DIR/c<channel>/<rank>-<image>.png and
      concepts.json; scores are cached in DIR/${ATLAS_CACHE_FILE})`;

const CONCEPTS_OPTIONS = {
  model: { type: 'string' },
  images: { type: 'string' },
  layer: { type: 'string' },
  out: { type: 'string' },
  top: { type: 'string' },
  channels: { type: 'string' },
  'per-channel': { type: 'string' },
  composite: { type: 'string' },
  rules: { type: 'string' },
  epsilon: { type: 'string' },
  gamma: { type: 'string' },
  init: { type: 'string' },
  ...PREPROCESS_OPTIONS,
  labels: { type: 'string' },
  backend: { type: 'string' },
} as const;

export interface ConceptsIndex {
  model: string;
  layer: string;
  opType: string;
  images: string;
  rules: RulesConfig;
  /** Whether the scores came from the cache file. */
  cached: boolean;
  errors: { file: string; error: string }[];
  channels: {
    channel: number;
    references: { rank: number; file: string; target: number; relevance: number; crop: Box; png: string }[];
  }[];
}

export async function conceptsCommand(args: string[]): Promise<void> {
  let values: Values;
  try {
    values = parseArgs({ args: joinNegativeNumbers(args, new Set(['--mean', '--std', '--epsilon', '--gamma'])), options: CONCEPTS_OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new UsageError(`concepts: ${(e as Error).message}`);
  }
  for (const f of ['model', 'images', 'layer', 'out'] as const) if (!values[f]) throw new UsageError(`concepts: --${f} is required`);
  const dir = values.images as string;
  const outDir = values.out as string;
  const layer = values.layer as string;
  const top = intArg('top', values.top as string | undefined, 1) ?? 8;
  const perChannel = intArg('per-channel', values['per-channel'] as string | undefined, 1) ?? 4;
  const wanted = values.channels === undefined ? undefined : (values.channels as string).split(',').map((s) => Number(s.trim()));
  if (wanted?.some((c) => !Number.isInteger(c) || c < 0)) throw new UsageError(`--channels: expected 0-based channel indices, got '${values.channels}'`);
  const files = folderImages(dir, outDir);
  const rawRules = rulesFrom(values);
  parseRulesConfig(rawRules, (values.rules as string | undefined) ?? 'rules');
  mkdirSync(outDir, { recursive: true });

  const config = await cliModelConfig(values, values.model as string);
  const ex = await Explainer.load(values.model as string, loadOptionsFrom(values, undefined, config.preprocessing.size));
  try {
    let info;
    try {
      info = conditionLayer(ex, layer);
    } catch (e) {
      throw new UsageError(`--layer: ${(e as Error).message}`);
    }
    for (const c of wanted ?? [])
      if (c >= info.channels) throw new UsageError(`--channels: channel ${c} is out of range: layer '${info.name}' has ${info.channels} channels`);
    const pre = preprocessFor(config, ex);
    if (rawRules.inputBounds === undefined) rawRules.inputBounds = inputBoundsFor(pre);
    const rules = parseRulesConfig(rawRules, (values.rules as string | undefined) ?? 'rules');
    const key = atlasKey(values.model as string, info.name, rules, dir, files);
    let scores = readAtlasCache(outDir, key);
    const cached = !!scores;
    if (!scores) {
      const progress = new BatchProgress(process.stderr, files.length);
      scores = await scanImages(ex, files, {
        rules,
        layer: info.name,
        load: (f) => {
          progress.start(f);
          return loadImageTensor(path.join(dir, f), pre);
        },
        onProgress: (_d, _t, f, err) => progress.finish(f, err ? `error: ${err}` : 'scored', !!err),
      });
      progress.end();
      writeAtlasCache(outDir, key, scores);
    }
    const channels = wanted ?? rankChannels(scores, Math.min(top, info.channels));
    const index: ConceptsIndex = {
      model: values.model as string,
      layer: info.name,
      opType: info.opType,
      images: dir,
      rules,
      cached,
      errors: scores.filter((s) => s.error).map((s) => ({ file: s.file, error: s.error as string })),
      channels: channels.map((channel) => ({ channel, references: [] })),
    };
    const crops = await referenceCrops(ex, scores, channels, perChannel, {
      rules,
      layer: info.name,
      load: (file) => loadImageTensor(path.join(dir, file), pre),
    });
    for (const r of crops) {
      const sub = path.join(outDir, `c${r.channel}`);
      mkdirSync(sub, { recursive: true });
      const png = path.join(sub, `${r.rank}-${path.basename(r.file, path.extname(r.file))}.png`);
      await sharp(r.crop.rgb, { raw: { width: r.crop.width, height: r.crop.height, channels: 3 } }).png().toFile(png);
      index.channels.find((e) => e.channel === r.channel)?.references.push({ rank: r.rank, file: r.file, target: r.target, relevance: r.relevance, crop: r.box, png });
    }
    for (const e of index.channels) e.references.sort((a, b) => a.rank - b.rank);
    writeFileSync(path.join(outDir, 'concepts.json'), JSON.stringify(index, null, 2) + '\n');
    process.stdout.write(
      `${files.length - index.errors.length} of ${files.length} images scored${cached ? ' (from the cache)' : ''}; ` +
        `${channels.length} channels of ${info.name} with up to ${perChannel} reference crops each in ${outDir}\n`,
    );
    for (const e of index.channels)
      process.stdout.write(`  channel ${e.channel}: ${e.references.map((r) => `${r.file} ${r.relevance.toFixed(4)}`).join(', ')}\n`);
  } finally {
    await ex.dispose();
  }
}
