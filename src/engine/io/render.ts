// How a relevance map becomes a picture: colormaps, the robust scale, the contrast curve, the
// overlay weight and the three views (over the photo, alone, side by side). Pure (no Node, no DOM):
// the engine's PNG writer (io/heatmap.ts: CLI, export, folder thumbnails) and the panel's webview
// (webview/colormap.ts) both draw with these functions, so every picture is scaled the same way.
//
// Relevance is heavy-tailed: a few pixels hold values many times larger than the rest, so scaling
// by the maximum leaves everything else near zero (and near invisible). The map is scaled by a
// high percentile of |R| instead (default the 99.5th) and the few values beyond it are clipped,
// as Captum's `outlier_perc` and Zennit's `imgify` levels do.

export const COLORMAP_IDS = ['bwr', 'coldnhot', 'seismic', 'hot', 'gray'] as const;
export type ColormapId = (typeof COLORMAP_IDS)[number];

export const SIGNS = ['both', 'positive', 'negative'] as const;
export type Sign = (typeof SIGNS)[number];

/** Over the photo, the map alone on its own background, photo and map side by side. */
export const HEATMAP_VIEWS = ['overlay', 'alone', 'side'] as const;
export type HeatmapView = (typeof HEATMAP_VIEWS)[number];

/** |R| at this percentile is drawn at full strength; larger values are clipped. */
export const DEFAULT_PERCENTILE = 99.5;
export const MIN_PERCENTILE = 50;
export const MAX_PERCENTILE = 100;
/** Contrast: strength = (|R| / scale) ^ gamma; below 1 brings out moderate relevance. */
export const DEFAULT_GAMMA = 1;
export const MIN_GAMMA = 0.1;
export const MAX_GAMMA = 10;
/** The heatmap's weight over the photo where relevance reaches the scale. */
export const DEFAULT_OPACITY = 0.8;

type Stop = readonly [t: number, r: number, g: number, b: number];

/** Piecewise-linear colormaps, RGB 0..255, t in 0..1. Signed maps have their zero at t = 0.5. */
const STOPS: Record<ColormapId, readonly Stop[]> = {
  // blue - white - red
  bwr: [
    [0, 0, 0, 255],
    [0.5, 255, 255, 255],
    [1, 255, 0, 0],
  ],
  // cyan - blue - black - red - yellow
  coldnhot: [
    [0, 0, 255, 255],
    [0.25, 0, 0, 255],
    [0.5, 0, 0, 0],
    [0.75, 255, 0, 0],
    [1, 255, 255, 0],
  ],
  // dark blue - blue - white - red - dark red
  seismic: [
    [0, 0, 0, 77],
    [0.25, 0, 0, 255],
    [0.5, 255, 255, 255],
    [0.75, 255, 0, 0],
    [1, 128, 0, 0],
  ],
  // black - red - yellow - white
  hot: [
    [0, 0, 0, 0],
    [0.375, 255, 0, 0],
    [0.75, 255, 255, 0],
    [1, 255, 255, 255],
  ],
  gray: [
    [0, 0, 0, 0],
    [1, 255, 255, 255],
  ],
};

/** Maps that show sign (zero in the middle); the others show magnitude. */
export const SIGNED: ReadonlySet<ColormapId> = new Set<ColormapId>(['bwr', 'coldnhot', 'seismic']);

/** The colour at t in [0, 1] (clamped; NaN counts as zero relevance), RGB 0..255 integers. */
export function colourAt(name: ColormapId, t: number): [number, number, number] {
  const stops = STOPS[name];
  if (!stops) throw new Error(`unknown colormap '${String(name)}' (available: ${COLORMAP_IDS.join(', ')})`);
  const x = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : SIGNED.has(name) ? 0.5 : 0;
  for (let i = 1; i < stops.length; i++) {
    const [t1, r1, g1, b1] = stops[i];
    if (x <= t1) {
      const [t0, r0, g0, b0] = stops[i - 1];
      const f = t1 === t0 ? 0 : (x - t0) / (t1 - t0);
      return [Math.round(r0 + f * (r1 - r0)), Math.round(g0 + f * (g1 - g0)), Math.round(b0 + f * (b1 - b0))];
    }
  }
  const last = stops[stops.length - 1];
  return [last[1], last[2], last[3]];
}

// Odd, so that t = 0.5 (zero relevance on signed maps) has an exact entry.
export const LUT_SIZE = 1025;
const LUTS = new Map<ColormapId, Uint8Array>();

/** A LUT_SIZE-entry RGB lookup table of the colormap. */
export function colourLut(name: ColormapId): Uint8Array {
  let lut = LUTS.get(name);
  if (!lut) {
    lut = new Uint8Array(LUT_SIZE * 3);
    for (let i = 0; i < LUT_SIZE; i++) lut.set(colourAt(name, i / (LUT_SIZE - 1)), i * 3);
    LUTS.set(name, lut);
  }
  return lut;
}

// ---------- the scale ----------

/** Largest absolute value of the finite entries (0 for an empty or all-zero map). */
export function maxAbs(data: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]);
    if (a > m && Number.isFinite(a)) m = a;
  }
  return m;
}

/** The p-th percentile (0..100, linear interpolation) of |v| over the finite entries. */
export function percentileAbs(data: ArrayLike<number>, p: number): number {
  const abs = new Float64Array(data.length);
  let n = 0;
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]);
    if (Number.isFinite(a)) abs[n++] = a;
  }
  if (n === 0) return 0;
  const sorted = abs.subarray(0, n).sort();
  const pos = (Math.min(100, Math.max(0, p)) / 100) * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export interface MapScale {
  /** |R| drawn at full strength. */
  value: number;
  /** The percentile it was taken at (100 = the maximum). */
  percentile: number;
  /** max |R| of the map. */
  max: number;
  /** Share of the map's pixels with |R| above `value` (drawn clipped). */
  clipped: number;
}

/**
 * The scale of a map: the `percentile`-th percentile of |R| (falls back to the maximum when that
 * is 0, e.g. a map that is zero almost everywhere), with what it clips.
 */
export function mapScale(data: ArrayLike<number>, percentile: number = DEFAULT_PERCENTILE): MapScale {
  const p = Number.isFinite(percentile) ? Math.min(MAX_PERCENTILE, Math.max(0, percentile)) : DEFAULT_PERCENTILE;
  const max = maxAbs(data);
  let value = p >= 100 ? max : percentileAbs(data, p);
  if (!(value > 0)) value = max;
  let above = 0;
  let n = 0;
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]);
    if (!Number.isFinite(a)) continue;
    n++;
    if (a > value) above++;
  }
  return { value, percentile: p, max, clipped: n ? above / n : 0 };
}

/** Keeps the part of v the sign mode shows. */
export function filterSign(v: number, sign: Sign): number {
  if (sign === 'positive') return v > 0 ? v : 0;
  if (sign === 'negative') return v < 0 ? v : 0;
  return v;
}

/**
 * Colormap position and strength of a relevance value. `scale` is |R| drawn at full strength.
 * strength = min(1, |v| / scale) ^ gamma; signed maps: t = 0.5 +- 0.5 strength; magnitude maps:
 * t = strength.
 */
export function normalise(v: number, scale: number, name: ColormapId, sign: Sign, gamma = 1): { t: number; strength: number } {
  const f = filterSign(Number.isFinite(v) ? v : 0, sign);
  const r = scale > 0 ? Math.min(1, Math.abs(f) / scale) : 0;
  const strength = gamma === 1 || r === 0 ? r : r ** gamma;
  return { t: SIGNED.has(name) ? 0.5 + 0.5 * Math.sign(f) * strength : strength, strength };
}

/**
 * The heatmap's weight over the photo at a given strength: opacity * sqrt(strength). The square
 * root lets moderate relevance show (a quarter of the scale gets half the opacity) while zero
 * relevance leaves the photo untouched.
 */
export function overlayWeight(strength: number, opacity: number): number {
  return Math.min(1, Math.max(0, opacity)) * Math.sqrt(Math.min(1, Math.max(0, strength)));
}

// ---------- pictures ----------

export interface FloatMap {
  width: number;
  height: number;
  data: ArrayLike<number>;
}

export interface RgbImage {
  width: number;
  height: number;
  /** width*height*3 bytes. */
  rgb: ArrayLike<number>;
}

export interface RenderOptions {
  colormap: ColormapId;
  sign: Sign;
  /** Percentile of |R| drawn at full strength (default DEFAULT_PERCENTILE). */
  percentile?: number;
  /** An explicit scale (|R| at full strength) instead of the percentile, e.g. one shared by several maps. */
  scale?: number;
  gamma?: number;
}

export interface ComposeOptions extends RenderOptions {
  view: HeatmapView;
  /** The overlay's weight where relevance reaches the scale (overlay view only). */
  opacity?: number;
}

export function scaleFor(map: FloatMap, opts: RenderOptions): number {
  return opts.scale ?? mapScale(map.data, opts.percentile ?? DEFAULT_PERCENTILE).value;
}

/** Bilinear sample of the map at continuous map coordinates (pixel centres at integers). */
export function sampleBilinear(map: FloatMap, x: number, y: number): number {
  const { width: w, height: h, data } = map;
  const cx = Math.min(w - 1, Math.max(0, x));
  const cy = Math.min(h - 1, Math.max(0, y));
  const x0 = Math.floor(cx);
  const y0 = Math.floor(cy);
  const x1 = Math.min(w - 1, x0 + 1);
  const y1 = Math.min(h - 1, y0 + 1);
  const fx = cx - x0;
  const fy = cy - y0;
  const a = data[y0 * w + x0];
  const b = data[y0 * w + x1];
  const c = data[y1 * w + x0];
  const d = data[y1 * w + x1];
  return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy;
}

/** The map value under an output pixel when the map is stretched over an image of outW x outH. */
export function mapValueAt(map: FloatMap, px: number, py: number, outW: number, outH: number): number {
  return sampleBilinear(map, ((px + 0.5) * map.width) / outW - 0.5, ((py + 0.5) * map.height) / outH - 0.5);
}

/** The map stretched to W x H, fully coloured, written as RGBA into `out` at column offset x0 of a row stride. */
function paintMap(map: FloatMap, W: number, H: number, opts: RenderOptions, scale: number, out: Uint8ClampedArray, stride: number, x0: number, photo?: RgbImage, opacity = 1): void {
  const lut = colourLut(opts.colormap);
  const gamma = opts.gamma ?? DEFAULT_GAMMA;
  const same = map.width === W && map.height === H;
  const sx = map.width / W;
  const sy = map.height / H;
  for (let y = 0; y < H; y++) {
    const my = (y + 0.5) * sy - 0.5;
    for (let x = 0; x < W; x++) {
      const v = same ? map.data[y * W + x] : sampleBilinear(map, (x + 0.5) * sx - 0.5, my);
      const { t, strength } = normalise(v, scale, opts.colormap, opts.sign, gamma);
      const li = Math.round(t * (LUT_SIZE - 1)) * 3;
      const o = (y * stride + x0 + x) * 4;
      if (photo) {
        const a = overlayWeight(strength, opacity);
        const i = (y * W + x) * 3;
        out[o] = (1 - a) * photo.rgb[i] + a * lut[li];
        out[o + 1] = (1 - a) * photo.rgb[i + 1] + a * lut[li + 1];
        out[o + 2] = (1 - a) * photo.rgb[i + 2] + a * lut[li + 2];
      } else {
        out[o] = lut[li];
        out[o + 1] = lut[li + 1];
        out[o + 2] = lut[li + 2];
      }
      out[o + 3] = 255;
    }
  }
}

/** The map alone at its own resolution, fully coloured (thumbnails, layer view, compare cells). RGBA bytes. */
export function renderMapRgba(map: FloatMap, opts: RenderOptions): Uint8ClampedArray {
  const out = new Uint8ClampedArray(map.width * map.height * 4);
  paintMap(map, map.width, map.height, opts, scaleFor(map, opts), out, map.width, 0);
  return out;
}

/** The gap between photo and map in the side-by-side view (transparent). */
export function sideGap(width: number): number {
  return Math.max(4, Math.round(width / 40));
}

/** Size of the composed picture for an image of W x H. */
export function composedSize(view: HeatmapView, W: number, H: number): { width: number; height: number } {
  return view === 'side' ? { width: 2 * W + sideGap(W), height: H } : { width: W, height: H };
}

/**
 * Which image pixel column a column of the composed picture shows (the map's side in the side
 * view counts as the image too), or -1 in the gap.
 */
export function imageColumnAt(view: HeatmapView, px: number, W: number): number {
  if (view !== 'side' || px < W) return px;
  const x = px - W - sideGap(W);
  return x >= 0 && x < W ? x : -1;
}

/**
 * The picture of a map for a photo: `overlay` blends the map (stretched to the photo) over it with
 * weight overlayWeight(strength, opacity); `alone` is the map on its colormap's own background at
 * the photo's size; `side` is the photo, a transparent gap, and the map alone. RGBA bytes.
 */
export function composeHeatmap(image: RgbImage, map: FloatMap, opts: ComposeOptions): { width: number; height: number; rgba: Uint8ClampedArray } {
  const { width: W, height: H } = image;
  const size = composedSize(opts.view, W, H);
  const out = new Uint8ClampedArray(size.width * size.height * 4);
  const scale = scaleFor(map, opts);
  if (opts.view === 'overlay') paintMap(map, W, H, opts, scale, out, W, 0, image, opts.opacity ?? DEFAULT_OPACITY);
  else if (opts.view === 'alone') paintMap(map, W, H, opts, scale, out, W, 0);
  else {
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const i = (y * W + x) * 3;
        const o = (y * size.width + x) * 4;
        out[o] = image.rgb[i];
        out[o + 1] = image.rgb[i + 1];
        out[o + 2] = image.rgb[i + 2];
        out[o + 3] = 255;
      }
    paintMap(map, W, H, opts, scale, out, size.width, W + sideGap(W));
  }
  return { ...size, rgba: out };
}

/** Short number format for relevance values. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(2);
  const s = v.toPrecision(4);
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

/** One line saying how a map is scaled, for colour bars, notes and the CLI. */
export function describeScale(s: MapScale, gamma = DEFAULT_GAMMA): string {
  const at = s.percentile >= 100 ? `the maximum |R| = ${formatValue(s.value)}` : `the ${formatPercentile(s.percentile)} percentile of |R| = ${formatValue(s.value)} (max ${formatValue(s.max)}, ${formatShare(s.clipped)} of pixels clipped)`;
  return `full colour at ${at}${gamma !== 1 ? `, contrast γ ${formatValue(gamma)}` : ''}`;
}

function ordinal(n: number): string {
  const s = String(n);
  if (!Number.isInteger(n)) return `${s}th`;
  const m100 = n % 100;
  if (m100 >= 11 && m100 <= 13) return `${s}th`;
  return s + (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
}

export function formatPercentile(p: number): string {
  return ordinal(Number(p.toFixed(2)));
}

function formatShare(f: number): string {
  const pct = f * 100;
  return `${pct === 0 ? '0' : pct < 0.1 ? pct.toPrecision(1) : pct < 10 ? pct.toFixed(1) : pct.toFixed(0)}%`;
}
