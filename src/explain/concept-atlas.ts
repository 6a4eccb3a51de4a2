// Reference examples for concepts (relevance maximisation, Achtibat et al. 2023): over a folder of
// images, each channel of a layer is scored by the relevance it carries for each image's predicted
// class; a channel's reference images are those where that relevance is largest, each with the
// crop of the image where the channel's conditional relevance sits. Scores are cached in the
// output folder, keyed by the model file, the layer, the rules and the folder's files.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { RulesConfig } from '../engine/config';
import { Tensor } from '../engine/graph/graph';
import { RgbImage } from '../engine/io/image';
import { RelevanceMap, relevanceMap } from '../engine/io/heatmap';
import { channelMask, conditionLayer, conditionalRelevance } from './concepts';
import type { MethodHost } from './methods';

/** What a folder scan needs from an Explainer. */
export type AtlasHost = MethodHost;

export interface ImageScores {
  file: string;
  target: number;
  /** Relevance per channel of the layer for the image's predicted class. */
  channelRelevance: number[];
  error?: string;
}

export interface AtlasCacheKey {
  model: { path: string; size: number; mtimeMs: number };
  layer: string;
  rules: RulesConfig;
  files: { name: string; size: number; mtimeMs: number }[];
}

export const ATLAS_CACHE_FILE = 'concepts-cache.json';

function fileStamp(file: string): { size: number; mtimeMs: number } {
  const s = statSync(file);
  return { size: s.size, mtimeMs: Math.round(s.mtimeMs) };
}

export function atlasKey(modelPath: string, layer: string, rules: RulesConfig, dir: string, files: string[]): AtlasCacheKey {
  return {
    model: { path: path.resolve(modelPath), ...fileStamp(modelPath) },
    layer,
    rules,
    files: files.map((f) => {
      try {
        return { name: f, ...fileStamp(path.join(dir, f)) };
      } catch {
        return { name: f, size: -1, mtimeMs: -1 };
      }
    }),
  };
}

/** The cached scores when the cache file's key matches, else undefined. */
export function readAtlasCache(outDir: string, key: AtlasCacheKey): ImageScores[] | undefined {
  const file = path.join(outDir, ATLAS_CACHE_FILE);
  if (!existsSync(file)) return undefined;
  try {
    const c = JSON.parse(readFileSync(file, 'utf8')) as { key: AtlasCacheKey; scores: ImageScores[] };
    return JSON.stringify(c.key) === JSON.stringify(key) ? c.scores : undefined;
  } catch {
    return undefined; // unreadable: scanned again and rewritten
  }
}

export function writeAtlasCache(outDir: string, key: AtlasCacheKey, scores: ImageScores[]): void {
  writeFileSync(path.join(outDir, ATLAS_CACHE_FILE), JSON.stringify({ key, scores }) + '\n');
}

export interface ScanOptions {
  rules: RulesConfig;
  layer: string;
  /** Reads and preprocesses one image. */
  load: (file: string) => Promise<{ tensor: Tensor }>;
  onProgress?: (done: number, total: number, file: string, error?: string) => void;
  signal?: AbortSignal;
}

/** Each image's relevance per channel of the layer (one conditional run per image). */
export async function scanImages(host: AtlasHost, files: string[], o: ScanOptions): Promise<ImageScores[]> {
  const C = conditionLayer(host, o.layer).channels;
  const all = channelMask(C, Array.from({ length: C }, (_, i) => i));
  const out: ImageScores[] = [];
  for (let i = 0; i < files.length; i++) {
    if (o.signal?.aborted) throw new Error('cancelled');
    try {
      const { tensor } = await o.load(files[i]);
      const r = await conditionalRelevance(host, tensor, { rules: o.rules, layer: o.layer, masks: [all] });
      out.push({ file: files[i], target: r.target, channelRelevance: Array.from(r.channelRelevance) });
      o.onProgress?.(i + 1, files.length, files[i]);
    } catch (e) {
      const msg = ((e as Error)?.message ?? String(e)).split('\n')[0];
      out.push({ file: files[i], target: -1, channelRelevance: [], error: msg });
      o.onProgress?.(i + 1, files.length, files[i], msg);
    }
  }
  return out;
}

/** Channels ranked by their largest relevance over the images (largest first). */
export function rankChannels(scores: ImageScores[], k: number): number[] {
  const ok = scores.filter((s) => !s.error);
  if (!ok.length) return [];
  const C = ok[0].channelRelevance.length;
  const best = Array.from({ length: C }, (_, c) => Math.max(...ok.map((s) => s.channelRelevance[c])));
  const idx = Array.from({ length: C }, (_, c) => c);
  idx.sort((a, b) => best[b] - best[a] || a - b);
  return idx.slice(0, Math.max(0, k));
}

/** For a channel, the images where it carries the most relevance (largest first). */
export function topImages(scores: ImageScores[], channel: number, n: number): { file: string; target: number; relevance: number }[] {
  return scores
    .filter((s) => !s.error)
    .map((s) => ({ file: s.file, target: s.target, relevance: s.channelRelevance[channel] }))
    .sort((a, b) => b.relevance - a.relevance || (a.file < b.file ? -1 : 1))
    .slice(0, Math.max(0, n));
}

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * Where a map's positive relevance sits: a square window, the smallest of a few sizes (1/4, 2/5,
 * 3/5 of the shorter side) that holds at least half the positive relevance, placed where it holds
 * the most (the largest size when none holds half).
 */
export function relevanceBox(map: RelevanceMap): Box {
  const { width: W, height: H, data } = map;
  // integral image of the positive part
  const I = new Float64Array((W + 1) * (H + 1));
  let total = 0;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const v = Math.max(0, data[y * W + x]);
      total += v;
      I[(y + 1) * (W + 1) + x + 1] = v + I[y * (W + 1) + x + 1] + I[(y + 1) * (W + 1) + x] - I[y * (W + 1) + x];
    }
  const side = Math.min(W, H);
  let best: Box = { x: 0, y: 0, width: W, height: H };
  for (const f of [0.25, 0.4, 0.6]) {
    const s = Math.max(1, Math.round(side * f));
    let bx = 0;
    let by = 0;
    let bs = -1;
    for (let y = 0; y + s <= H; y++)
      for (let x = 0; x + s <= W; x++) {
        const v = I[(y + s) * (W + 1) + x + s] - I[y * (W + 1) + x + s] - I[(y + s) * (W + 1) + x] + I[y * (W + 1) + x];
        if (v > bs) {
          bs = v;
          bx = x;
          by = y;
        }
      }
    best = { x: bx, y: by, width: s, height: s };
    if (total > 0 && bs >= 0.5 * total) break;
  }
  return best;
}

/** A box in model-input pixels mapped onto the decoded photo (the input covers `region` of it: all of it when stretched). */
export function boxOnPhoto(
  box: Box,
  input: { width: number; height: number },
  photo: { width: number; height: number },
  region: { x: number; y: number; width: number; height: number } = { x: 0, y: 0, width: photo.width, height: photo.height },
): Box {
  // the input covers `region` of the photo (all of it, unless the preprocessing cropped or padded)
  const sx = region.width / input.width;
  const sy = region.height / input.height;
  const x = Math.min(photo.width - 1, Math.max(0, Math.floor(region.x + box.x * sx)));
  const y = Math.min(photo.height - 1, Math.max(0, Math.floor(region.y + box.y * sy)));
  return {
    x,
    y,
    width: Math.max(1, Math.min(photo.width - x, Math.ceil(box.width * sx))),
    height: Math.max(1, Math.min(photo.height - y, Math.ceil(box.height * sy))),
  };
}

/** The pixels of `box` cut out of an RGB image. */
export function cropRgb(img: RgbImage, box: Box): RgbImage {
  const out = new Uint8Array(box.width * box.height * 3);
  for (let y = 0; y < box.height; y++)
    out.set(img.rgb.subarray(((box.y + y) * img.width + box.x) * 3, ((box.y + y) * img.width + box.x + box.width) * 3), y * box.width * 3);
  return { rgb: out, width: box.width, height: box.height };
}

/** The conditional map of one channel for one image, at the model's input size. */
export async function channelMap(host: AtlasHost, x: Tensor, rules: RulesConfig, layer: string, channels: number[], target?: number): Promise<RelevanceMap[]> {
  const C = conditionLayer(host, layer).channels;
  const r = await conditionalRelevance(host, x, { rules, layer, target, masks: channels.map((c) => channelMask(C, [c])) });
  return r.maps.map((m) => relevanceMap(m.relevance, host.input.layout));
}

export interface ReferenceCrop {
  channel: number;
  /** 1: the image where the channel carries the most relevance. */
  rank: number;
  file: string;
  target: number;
  relevance: number;
  /** Where the channel's conditional relevance sits, in photo pixels. */
  box: Box;
  crop: RgbImage;
}

/**
 * For each channel, its `perChannel` reference images (topImages) with the crop where its
 * conditional relevance sits; one batched conditional run per image, for the channels it is a
 * reference of. `check` runs between images (cancellation).
 */
export async function referenceCrops(
  host: AtlasHost,
  scores: ImageScores[],
  channels: number[],
  perChannel: number,
  o: {
    rules: RulesConfig;
    layer: string;
    load: (file: string) => Promise<{ tensor: Tensor; original: RgbImage; region?: { x: number; y: number; width: number; height: number } }>;
    check?: () => void;
  },
): Promise<ReferenceCrop[]> {
  const jobs = new Map<string, { channel: number; rank: number; relevance: number; target: number }[]>();
  channels.forEach((channel) =>
    topImages(scores, channel, perChannel).forEach((t, rank) => {
      const l = jobs.get(t.file) ?? [];
      l.push({ channel, rank: rank + 1, relevance: t.relevance, target: t.target });
      jobs.set(t.file, l);
    }),
  );
  const out: ReferenceCrop[] = [];
  for (const [file, list] of jobs) {
    o.check?.();
    const { tensor, original, region } = await o.load(file);
    const maps = await channelMap(host, tensor, o.rules, o.layer, list.map((j) => j.channel), list[0].target);
    list.forEach((j, k) => {
      const box = boxOnPhoto(relevanceBox(maps[k]), { width: host.input.width, height: host.input.height }, original, region);
      out.push({ channel: j.channel, rank: j.rank, file, target: j.target, relevance: j.relevance, box, crop: cropRgb(original, box) });
    });
  }
  return out.sort((a, b) => a.channel - b.channel || a.rank - b.rank);
}

// ---------- indexes kept by the extension (one folder per model, layer and image folder) ----------

export const INDEX_META_FILE = 'index.json';

export interface IndexMeta {
  model: string;
  layer: string;
  folder: string;
  rules: RulesConfig;
  images: number;
  /** When the scores were written (ms since the epoch). */
  written: number;
}

/** The folder under `root` holding the index of (model, layer, image folder). */
export function indexDirFor(root: string, modelPath: string, layer: string, folder: string): string {
  const h = createHash('sha256').update(JSON.stringify([path.resolve(modelPath), layer, path.resolve(folder)])).digest('hex');
  return path.join(root, h.slice(0, 20));
}

/** The indexes under `root` of this model and layer, newest first (unreadable ones skipped). */
export function findIndexes(root: string, modelPath: string, layer: string): { dir: string; meta: IndexMeta }[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const model = path.resolve(modelPath);
  const out: { dir: string; meta: IndexMeta }[] = [];
  for (const n of names) {
    const dir = path.join(root, n);
    try {
      const meta = JSON.parse(readFileSync(path.join(dir, INDEX_META_FILE), 'utf8')) as IndexMeta;
      if (path.resolve(meta.model) === model && meta.layer === layer) out.push({ dir, meta });
    } catch {
      // not an index, or unreadable
    }
  }
  return out.sort((a, b) => b.meta.written - a.meta.written);
}
