// Relevance heatmaps as PNG files: channel sums of a relevance tensor, and the pictures of
// ./render (the same scaling, contrast and views as the panel) encoded with sharp.

import sharp from 'sharp';
import type { Layout, Tensor } from '../graph/graph';
import type { RgbImage } from './image';
import { resizeBilinear } from './resample';
import {
  COLORMAP_IDS,
  DEFAULT_GAMMA,
  DEFAULT_OPACITY,
  DEFAULT_PERCENTILE,
  HEATMAP_VIEWS,
  SIGNED,
  SIGNS,
  colourAt,
  composeHeatmap,
  filterSign,
  mapScale,
  renderMapRgba,
  type ColormapId,
  type HeatmapView,
  type RenderOptions,
  type Sign,
} from './render';

export { DEFAULT_PERCENTILE, DEFAULT_GAMMA, DEFAULT_OPACITY, HEATMAP_VIEWS, mapScale, describeScale } from './render';

/**
 * The heatmap PNG for a photo (`view` overlay, alone or side), or without a photo (an `.npy`
 * input) the map alone at its own size.
 */
export async function heatmapFile(original: RgbImage | undefined, map: RelevanceMap, opts: BlendOptions = {}): Promise<Uint8Array> {
  return original ? blendHeatmap(original, map, opts) : heatmapPng(map, opts);
}
export type { HeatmapView, MapScale } from './render';

export type ColormapName = ColormapId;

export const COLORMAPS: readonly ColormapName[] = COLORMAP_IDS;

export const DEFAULT_COLORMAP: ColormapName = 'bwr';

export function isSignedColormap(name: ColormapName): boolean {
  if (!(COLORMAP_IDS as readonly string[]).includes(name)) throw new Error(`unknown colormap '${String(name)}' (available: ${COLORMAPS.join(', ')})`);
  return SIGNED.has(name);
}

/** Colour of t (-1..1 for signed maps, 0..1 for hot/gray; clamped) as 0..255 integers. */
export function colormap(name: ColormapName, t: number): [number, number, number] {
  const signed = isSignedColormap(name);
  const x = Number.isFinite(t) ? t : 0;
  return colourAt(name, signed ? 0.5 + 0.5 * Math.max(-1, Math.min(1, x)) : x);
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

export type HeatmapMode = Sign;

export interface HeatmapOptions {
  colormap?: ColormapName;
  mode?: HeatmapMode;
  /** Percentile of |R| drawn at full strength (default 99.5); larger values are clipped. */
  percentile?: number;
  /** Contrast of the colour mapping: strength = (|R| / scale) ^ gamma (default 1). */
  gamma?: number;
}

function checkMode(mode: HeatmapMode): void {
  if (!(SIGNS as readonly string[]).includes(mode)) throw new Error(`unknown heatmap mode '${String(mode)}' (use both, positive or negative)`);
}

function renderOptions(opts: HeatmapOptions): RenderOptions {
  const sign = opts.mode ?? 'both';
  checkMode(sign);
  return { colormap: opts.colormap ?? DEFAULT_COLORMAP, sign, percentile: opts.percentile ?? DEFAULT_PERCENTILE, gamma: opts.gamma ?? DEFAULT_GAMMA };
}

/**
 * Normalised relevance per pixel in -1..1: divided by the scale (the `percentile`-th percentile of
 * |R|, 100 = the maximum) and clipped, with the sign the mode hides set to 0.
 */
export function normaliseMap(data: ArrayLike<number>, mode: HeatmapMode = 'both', percentile = DEFAULT_PERCENTILE): Float32Array {
  checkMode(mode);
  const { value: m } = mapScale(data, percentile);
  const out = new Float32Array(data.length);
  if (m === 0) return out;
  for (let i = 0; i < out.length; i++) {
    const v = Number.isFinite(data[i]) ? filterSign(data[i], mode) / m : 0;
    out[i] = Math.max(-1, Math.min(1, v));
  }
  return out;
}

/** Render a map as RGBA pixels (opaque) at its own resolution, scaled as `normaliseMap`. */
export function renderHeatmap(map: RelevanceMap, opts: HeatmapOptions = {}): Uint8Array {
  const px = renderMapRgba(map, renderOptions(opts));
  return new Uint8Array(px.buffer, px.byteOffset, px.byteLength);
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
  // the scale comes from the map at its own resolution, as in every other picture of it
  const px = renderMapRgba(sized, { ...renderOptions(opts), scale: mapScale(map.data, opts.percentile ?? DEFAULT_PERCENTILE).value });
  return encodePng(new Uint8Array(px.buffer, px.byteOffset, px.byteLength), sized.width, sized.height, 4);
}

export interface BlendOptions extends HeatmapOptions {
  /** Opacity of the overlay where relevance reaches the scale (default 0.8). */
  alpha?: number;
  /** overlay (default), alone (the map on its own background, photo size) or side (photo | map). */
  view?: HeatmapView;
}

/** The picture of `map` for `original` (see composeHeatmap in ./render): RGBA bytes and its size. */
export function heatmapPicture(original: RgbImage, map: RelevanceMap, opts: BlendOptions = {}): { width: number; height: number; rgba: Uint8Array } {
  const view = opts.view ?? 'overlay';
  if (!(HEATMAP_VIEWS as readonly string[]).includes(view)) throw new Error(`unknown heatmap view '${String(view)}' (use ${HEATMAP_VIEWS.join(', ')})`);
  const { width, height, rgba } = composeHeatmap(original, map, { ...renderOptions(opts), view, opacity: opts.alpha ?? DEFAULT_OPACITY });
  return { width, height, rgba: new Uint8Array(rgba.buffer, rgba.byteOffset, rgba.byteLength) };
}

/** The picture as RGB (the side view's transparent gap turns white): the photo's size, or wider for `side`. */
export function blendPixels(original: RgbImage, map: RelevanceMap, opts: BlendOptions = {}): Uint8Array {
  const { rgba } = heatmapPicture(original, map, opts);
  const out = new Uint8Array((rgba.length / 4) * 3);
  for (let p = 0, q = 0; p < rgba.length; p += 4, q += 3) {
    const a = rgba[p + 3] / 255;
    out[q] = Math.round(rgba[p] * a + 255 * (1 - a));
    out[q + 1] = Math.round(rgba[p + 1] * a + 255 * (1 - a));
    out[q + 2] = Math.round(rgba[p + 2] * a + 255 * (1 - a));
  }
  return out;
}

/**
 * The picture as PNG bytes: by default the heatmap blended over the photo (at the photo's size);
 * `view: 'alone'` the map alone at the photo's size, `'side'` photo and map side by side with a
 * transparent gap (RGBA).
 */
export async function blendHeatmap(original: RgbImage, map: RelevanceMap, opts: BlendOptions = {}): Promise<Uint8Array> {
  const { width, height, rgba } = heatmapPicture(original, map, opts);
  if ((opts.view ?? 'overlay') === 'side') return encodePng(rgba, width, height, 4);
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0, q = 0; q < rgb.length; p += 4, q += 3) {
    rgb[q] = rgba[p];
    rgb[q + 1] = rgba[p + 1];
    rgb[q + 2] = rgba[p + 2];
  }
  return encodePng(rgb, width, height, 3);
}
