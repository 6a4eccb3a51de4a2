// The command line's concepts: `explain --condition LAYER:c1,c2` (the input relevance of what
// flows through those channels of LAYER) and `--condition LAYER:topK` (one map per top channel).
import { writeFileSync } from 'node:fs';
import { RulesConfig } from './engine/config';
import { Tensor } from './engine/graph/graph';
import { blendHeatmap, heatmapPng, relevanceMap } from './engine/io/heatmap';
import { writeNpy } from './engine/io/npy';
import { Explainer } from './explain/explainer';
import { channelMask, conditionLayer, conditionalRelevance, topChannels } from './explain/concepts';
import { UsageError } from './cli-args';

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
  o: { rules: RulesConfig; target?: number; outRelevance?: string; outHeatmap?: string; original?: { rgb: Uint8Array; width: number; height: number } },
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
      writeFileSync(entry.heatmapFile, o.original ? await blendHeatmap(o.original, map, { colormap: 'bwr' }) : await heatmapPng(map, { colormap: 'bwr' }));
    }
    maps.push(entry);
  }
  return { layer: info.name, opType: info.opType, layerRelevance: res.layerRelevance, channels: C, batched: res.batched, maps };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
