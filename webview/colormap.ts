// Colormaps and heatmap blending for the panel. Pure functions (no DOM), unit-tested in Node.
import type { ColormapName, SignMode } from '../src/protocol';

type Stop = [t: number, r: number, g: number, b: number];

/** Piecewise-linear colormaps, RGB in 0..255. Signed maps have their zero at t = 0.5. */
const STOPS: Record<ColormapName, Stop[]> = {
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
export const SIGNED_COLORMAPS: ReadonlySet<ColormapName> = new Set<ColormapName>(['bwr', 'coldnhot', 'seismic']);

// Odd, so that t = 0.5 (zero relevance on signed maps) has an exact entry.
const LUT_SIZE = 257;
const LUTS = new Map<ColormapName, Uint8Array>();

/** The colour at t in [0, 1] (clamped), RGB 0..255 integers. */
export function colormap(name: ColormapName, t: number): [number, number, number] {
  const stops = STOPS[name];
  if (!stops) throw new Error(`unknown colormap '${name}'`);
  const x = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0.5;
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

/** A LUT_SIZE-entry RGB lookup table of the colormap. */
export function colormapLut(name: ColormapName): Uint8Array {
  let lut = LUTS.get(name);
  if (!lut) {
    lut = new Uint8Array(LUT_SIZE * 3);
    for (let i = 0; i < LUT_SIZE; i++) lut.set(colormap(name, i / (LUT_SIZE - 1)), i * 3);
    LUTS.set(name, lut);
  }
  return lut;
}

/** Largest absolute value of the finite entries (0 for an empty or all-zero map). */
export function maxAbs(data: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]);
    if (a > m && Number.isFinite(a)) m = a;
  }
  return m;
}

/** Keeps the part of v the sign mode shows. */
export function filterSign(v: number, sign: SignMode): number {
  if (sign === 'positive') return v > 0 ? v : 0;
  if (sign === 'negative') return v < 0 ? v : 0;
  return v;
}

/**
 * Colormap position and strength of a relevance value. `scale` is the value shown at full
 * strength (usually the map's max |v|). Signed maps: t = 0.5 + 0.5 v/scale; magnitude maps:
 * t = |v|/scale. `strength` is |v|/scale in [0, 1].
 */
export function normalise(v: number, scale: number, name: ColormapName, sign: SignMode): { t: number; strength: number } {
  const f = filterSign(Number.isFinite(v) ? v : 0, sign);
  const r = scale > 0 ? Math.max(-1, Math.min(1, f / scale)) : 0;
  const strength = Math.abs(r);
  return { t: SIGNED_COLORMAPS.has(name) ? 0.5 + 0.5 * r : strength, strength };
}

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

export interface BlendOptions {
  colormap: ColormapName;
  /** 0..1: the heatmap's weight where relevance is strongest. */
  opacity: number;
  sign: SignMode;
  /** Defaults to the map's max |v|. */
  scale?: number;
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

/**
 * Blends the relevance map (stretched to the image size) over the image. Each pixel is
 * (1 - a) * image + a * colour, with a = opacity * strength (|v| / max|v|): zero relevance leaves
 * the photo visible, strong relevance shows the colour (the same blend as the exported PNG). Returns RGBA bytes for ImageData.
 */
export function blendOverImage(image: RgbImage, map: FloatMap, opts: BlendOptions): Uint8ClampedArray {
  const { width: W, height: H } = image;
  const out = new Uint8ClampedArray(W * H * 4);
  const lut = colormapLut(opts.colormap);
  const scale = opts.scale ?? maxAbs(map.data);
  const opacity = Math.min(1, Math.max(0, opts.opacity));
  const sx = map.width / W;
  const sy = map.height / H;
  for (let y = 0; y < H; y++) {
    const my = (y + 0.5) * sy - 0.5;
    for (let x = 0; x < W; x++) {
      const v = sampleBilinear(map, (x + 0.5) * sx - 0.5, my);
      const { t, strength } = normalise(v, scale, opts.colormap, opts.sign);
      const a = opacity * strength;
      const li = Math.round(t * (LUT_SIZE - 1)) * 3;
      const i = y * W + x;
      const o = i * 4;
      out[o] = (1 - a) * image.rgb[i * 3] + a * lut[li];
      out[o + 1] = (1 - a) * image.rgb[i * 3 + 1] + a * lut[li + 1];
      out[o + 2] = (1 - a) * image.rgb[i * 3 + 2] + a * lut[li + 2];
      out[o + 3] = 255;
    }
  }
  return out;
}

/** The map alone, at its own resolution, fully coloured (thumbnails, layer view). RGBA bytes. */
export function renderMap(map: FloatMap, opts: Omit<BlendOptions, 'opacity'>): Uint8ClampedArray {
  const n = map.width * map.height;
  const out = new Uint8ClampedArray(n * 4);
  const lut = colormapLut(opts.colormap);
  const scale = opts.scale ?? maxAbs(map.data);
  for (let i = 0; i < n; i++) {
    const { t } = normalise(map.data[i], scale, opts.colormap, opts.sign);
    const li = Math.round(t * (LUT_SIZE - 1)) * 3;
    out[i * 4] = lut[li];
    out[i * 4 + 1] = lut[li + 1];
    out[i * 4 + 2] = lut[li + 2];
    out[i * 4 + 3] = 255;
  }
  return out;
}

/** CSS gradient stops for a legend. */
export function legendGradient(name: ColormapName, steps = 9): string {
  const parts: string[] = [];
  for (let i = 0; i < steps; i++) {
    const t = i / (steps - 1);
    const [r, g, b] = colormap(name, t);
    parts.push(`rgb(${r}, ${g}, ${b}) ${Math.round(t * 100)}%`);
  }
  return `linear-gradient(to right, ${parts.join(', ')})`;
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
