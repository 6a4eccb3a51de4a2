// Relevance heatmaps: colormaps, rendering, and blending over the original photo.

import sharp from 'sharp';
import type { Layout, Tensor } from '../graph/graph';
import type { RgbImage } from './image';
import { resizeBilinear } from './resample';

export type ColormapName = 'bwr' | 'coldnhot' | 'seismic' | 'hot' | 'gray';

/** A colour stop: position t and colour (0..1 per channel). */
type Stop = readonly [t: number, r: number, g: number, b: number];

interface ColormapDef {
  /** Signed maps take t in -1..1 (0 = no relevance); unsigned ones take 0..1. */
  signed: boolean;
  stops: readonly Stop[];
}

const COLORMAP_DEFS: Record<ColormapName, ColormapDef> = {
  bwr: {
    signed: true,
    stops: [
      [-1, 0, 0, 1],
      [0, 1, 1, 1],
      [1, 1, 0, 0],
    ],
  },
  seismic: {
    signed: true,
    stops: [
      [-1, 0, 0, 0.3],
      [-0.5, 0, 0, 1],
      [0, 1, 1, 1],
      [0.5, 1, 0, 0],
      [1, 0.5, 0, 0],
    ],
  },
  coldnhot: {
    signed: true,
    stops: [
      [-1, 0, 1, 1],
      [-0.5, 0, 0, 1],
      [0, 0, 0, 0],
      [0.5, 1, 0, 0],
      [1, 1, 1, 0],
    ],
  },
  hot: {
    signed: false,
    stops: [
      [0, 0, 0, 0],
      [0.375, 1, 0, 0],
      [0.75, 1, 1, 0],
      [1, 1, 1, 1],
    ],
  },
  gray: {
    signed: false,
    stops: [
      [0, 0, 0, 0],
      [1, 1, 1, 1],
    ],
  },
};

export const COLORMAPS: readonly ColormapName[] = Object.keys(COLORMAP_DEFS) as ColormapName[];

export const DEFAULT_COLORMAP: ColormapName = 'bwr';

function defOf(name: ColormapName): ColormapDef {
  const def = COLORMAP_DEFS[name];
  if (!def) throw new Error(`unknown colormap '${String(name)}' (available: ${COLORMAPS.join(', ')})`);
  return def;
}

export function isSignedColormap(name: ColormapName): boolean {
  return defOf(name).signed;
}

/** Colour of t (-1..1 for signed maps, 0..1 for hot/gray; clamped) as 0..255 integers. */
export function colormap(name: ColormapName, t: number): [number, number, number] {
  const { signed, stops } = defOf(name);
  const x = Math.min(Math.max(Number.isFinite(t) ? t : 0, signed ? -1 : 0), 1);
  let i = 1;
  while (i < stops.length - 1 && x > stops[i][0]) i++;
  const [t0, r0, g0, b0] = stops[i - 1];
  const [t1, r1, g1, b1] = stops[i];
  const f = t1 > t0 ? (x - t0) / (t1 - t0) : 0;
  const mix = (a: number, b: number): number => Math.round((a + (b - a) * f) * 255);
  return [mix(r0, r1), mix(g0, g1), mix(b0, b1)];
}

// ---------- relevance maps ----------

export interface RelevanceMap {
  width: number;
  height: number;
  data: Float32Array;
}

/** Sum a [1,C,H,W] / [1,H,W,C] relevance tensor (batch axis optional) over its channels. */
export function relevanceMap(rel: Tensor, layout: Layout): RelevanceMap {
  const dims = rel.dims.length === 4 ? rel.dims.slice(1) : rel.dims;
  if (dims.length !== 3) throw new Error(`relevance tensor has shape [${rel.dims.join(', ')}], expected an image tensor`);
  const [C, H, W] = layout === 'NCHW' ? dims : [dims[2], dims[0], dims[1]];
  const data = new Float32Array(W * H);
  const src = rel.data;
  for (let p = 0; p < W * H; p++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += Number(layout === 'NCHW' ? src[c * W * H + p] : src[p * C + c]);
    data[p] = s;
  }
  return { width: W, height: H, data };
}

export type HeatmapMode = 'both' | 'positive' | 'negative';

export interface HeatmapOptions {
  colormap?: ColormapName;
  mode?: HeatmapMode;
}

function absMax(data: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]);
    if (a > m && Number.isFinite(a)) m = a;
  }
  return m;
}

const MODE_FILTER: Record<HeatmapMode, (v: number) => number> = {
  both: (v) => v,
  positive: (v) => Math.max(v, 0),
  negative: (v) => Math.min(v, 0),
};

/**
 * Normalised relevance per pixel in -1..1 (divided by the absolute maximum, so 0 stays 0),
 * with the sign the mode hides set to 0.
 */
export function normaliseMap(data: ArrayLike<number>, mode: HeatmapMode = 'both'): Float32Array {
  const m = absMax(data);
  const keep = MODE_FILTER[mode];
  if (!keep) throw new Error(`unknown heatmap mode '${String(mode)}' (use both, positive or negative)`);
  const out = new Float32Array(data.length);
  if (m === 0) return out;
  for (let i = 0; i < out.length; i++) out[i] = Number.isFinite(data[i]) ? keep(data[i] / m) : 0;
  return out;
}

/** Position on the colormap for normalised relevance n: as is for signed maps, |n| for hot/gray. */
function colormapPosition(name: ColormapName, n: number): number {
  return defOf(name).signed ? n : Math.abs(n);
}

/** Render a map as RGBA pixels (opaque), normalised symmetrically by its absolute maximum. */
export function renderHeatmap(map: RelevanceMap, opts: HeatmapOptions = {}): Uint8Array {
  const name = opts.colormap ?? DEFAULT_COLORMAP;
  const norm = normaliseMap(map.data, opts.mode ?? 'both');
  const out = new Uint8Array(map.width * map.height * 4);
  for (let p = 0; p < norm.length; p++) {
    const [r, g, b] = colormap(name, colormapPosition(name, norm[p]));
    out.set([r, g, b, 255], p * 4);
  }
  return out;
}

/** Bilinear resize of a relevance map. */
export function resizeMap(map: RelevanceMap, width: number, height: number): RelevanceMap {
  if (map.width === width && map.height === height) return map;
  return { width, height, data: resizeBilinear(map.data, map.width, map.height, 1, width, height) };
}

async function encodePng(pixels: Uint8Array, width: number, height: number, channels: 3 | 4): Promise<Uint8Array> {
  const buf = await sharp(pixels, { raw: { width, height, channels } }).png().toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** The heatmap alone as PNG bytes, optionally upsampled (bilinear) to width x height. */
export async function heatmapPng(
  map: RelevanceMap,
  opts: HeatmapOptions & { width?: number; height?: number } = {},
): Promise<Uint8Array> {
  const sized = resizeMap(map, opts.width ?? map.width, opts.height ?? map.height);
  return encodePng(renderHeatmap(sized, opts), sized.width, sized.height, 4);
}

export interface BlendOptions extends HeatmapOptions {
  /** Opacity of the overlay where relevance is at its maximum (default 0.6). */
  alpha?: number;
}

/** Blend pixels: the overlay weight is alpha * |normalised relevance|, so the photo shows where relevance is ~0. */
export function blendPixels(original: RgbImage, map: RelevanceMap, opts: BlendOptions = {}): Uint8Array {
  const name = opts.colormap ?? DEFAULT_COLORMAP;
  const alpha = Math.min(Math.max(opts.alpha ?? 0.6, 0), 1);
  const sized = resizeMap(map, original.width, original.height);
  const norm = normaliseMap(sized.data, opts.mode ?? 'both');
  const out = new Uint8Array(original.rgb.length);
  for (let p = 0; p < norm.length; p++) {
    const colour = colormap(name, colormapPosition(name, norm[p]));
    const w = alpha * Math.abs(norm[p]);
    for (let c = 0; c < 3; c++) {
      out[p * 3 + c] = Math.round(original.rgb[p * 3 + c] * (1 - w) + colour[c] * w);
    }
  }
  return out;
}

/** The heatmap upsampled to the photo's size and blended over it, as PNG bytes. */
export async function blendHeatmap(original: RgbImage, map: RelevanceMap, opts: BlendOptions = {}): Promise<Uint8Array> {
  return encodePng(blendPixels(original, map, opts), original.width, original.height, 3);
}
