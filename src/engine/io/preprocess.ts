// Image geometry before normalisation: resize (stretch, shorter side, fit and pad), centre crop,
// and resampling that follows PIL's conventions (what torchvision, timm and the Hugging Face
// image processors use on PIL images), so that the model sees the tensor it saw in training.
//
// PIL's resampling (Image.resize): a separable convolution, horizontal pass first; the filter's
// support is widened by the scale factor when shrinking (antialiasing); weights are normalised per
// output pixel and applied in 22-bit fixed point; the horizontal pass is rounded to 8 bits before
// the vertical one. sharp (libvips) differs when shrinking (it box-shrinks first and centres its
// kernels differently), so the model input is resampled here instead.

import type { RgbImage } from './image';

export const RESIZE_MODES = ['stretch', 'shorter-side', 'pad'] as const;
export type ResizeMode = (typeof RESIZE_MODES)[number];

export const INTERPOLATIONS = ['bilinear', 'bicubic', 'nearest', 'lanczos', 'box', 'hamming'] as const;
export type Interpolation = (typeof INTERPOLATIONS)[number];

/** PIL's resampling filter codes (Image.Resampling), as Hugging Face's `resample` key stores them. */
export const PIL_RESAMPLE: Record<number, Interpolation> = {
  0: 'nearest',
  1: 'lanczos',
  2: 'bilinear',
  3: 'bicubic',
  4: 'box',
  5: 'hamming',
};

/** How a photo becomes the model's input size (before the pixel values are normalised). */
export interface Geometry {
  /**
   * `stretch`: both sides to the target size, aspect ratio not kept; `shorter-side`: the shorter
   * side to the target, aspect ratio kept, then a centre crop; `pad`: the longer side to the
   * target, aspect ratio kept, then padded (with `fill`) to the input size.
   */
  resize: ResizeMode;
  /**
   * What the image is resized to before the centre crop: the shorter side (`shorter-side`), the
   * longer side (`pad`), or `[width, height]` (`stretch`, or any mode with a non-square input).
   * Default: the input size divided by `cropPct` (rounded down).
   */
  resizeTo?: number | [number, number];
  /** The share of the resized image the centre crop keeps, 0 < cropPct <= 1 (default 1). */
  cropPct?: number;
  interpolation: Interpolation;
  /** The centre crop's offset: `round` (half to even: torchvision, timm) or `floor` (Hugging Face). */
  cropRounding?: 'round' | 'floor';
  /** RGB 0..255 of padded areas (default black). */
  fill?: number[];
}

export const DEFAULT_GEOMETRY: Geometry = { resize: 'stretch', interpolation: 'bilinear' };

/** Where the model input comes from: the resized size and the crop window in resized pixels. */
export interface GeometryPlan {
  resizedWidth: number;
  resizedHeight: number;
  /** Crop window in the resized image; it may reach outside it (padding). */
  left: number;
  top: number;
  width: number;
  height: number;
}

/** The region of the original photo the model input covers, in original pixels (may reach outside the photo). */
export interface PhotoRegion {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Python's round(): halves to the even neighbour. */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

function pair(v: number | [number, number]): [number, number] {
  return typeof v === 'number' ? [v, v] : v;
}

function checkCropPct(p: number): void {
  if (!(p > 0 && p <= 1)) throw new Error(`image preprocessing: cropPct must be in (0, 1], got ${p}`);
}

/** The resized size and crop window for a srcW x srcH image and an outW x outH model input. */
export function planGeometry(srcW: number, srcH: number, outW: number, outH: number, g: Geometry): GeometryPlan {
  const cropPct = g.cropPct ?? 1;
  checkCropPct(cropPct);
  // target of the resize before the crop: [width, height]
  const scaled: [number, number] = g.resizeTo !== undefined ? pair(g.resizeTo) : [Math.floor(outW / cropPct), Math.floor(outH / cropPct)];
  let rw: number;
  let rh: number;
  if (g.resize === 'stretch') {
    [rw, rh] = scaled;
  } else if (g.resize === 'shorter-side' && scaled[0] === scaled[1]) {
    // torchvision Resize(int) and Hugging Face's shortest_edge: the shorter side to S, the longer
    // one to int(S * long / short)
    const s = scaled[0];
    if (srcW <= srcH) [rw, rh] = [s, Math.floor((s * srcH) / srcW)];
    else [rw, rh] = [Math.floor((s * srcW) / srcH), s];
  } else {
    // timm ResizeKeepRatio: one ratio for both sides, from the shorter (cover) or the longer
    // (fit) side relative to the target, sides rounded half to even
    const ratioW = srcW / scaled[0];
    const ratioH = srcH / scaled[1];
    const ratio = g.resize === 'pad' ? Math.max(ratioW, ratioH) : Math.min(ratioW, ratioH);
    [rw, rh] = [roundHalfEven(srcW / ratio), roundHalfEven(srcH / ratio)];
  }
  rw = Math.max(1, rw);
  rh = Math.max(1, rh);
  const offset = (resized: number, out: number): number => {
    // larger crop than image: padded with (out - resized) // 2 before (torchvision, timm)
    if (out > resized) return -Math.floor((out - resized) / 2);
    return g.cropRounding === 'floor' ? Math.floor((resized - out) / 2) : roundHalfEven((resized - out) / 2);
  };
  return { resizedWidth: rw, resizedHeight: rh, left: offset(rw, outW), top: offset(rh, outH), width: outW, height: outH };
}

/** The photo region a plan's model input covers, in original pixel units. */
export function photoRegion(srcW: number, srcH: number, plan: GeometryPlan): PhotoRegion {
  const sx = srcW / plan.resizedWidth;
  const sy = srcH / plan.resizedHeight;
  return { x: plan.left * sx, y: plan.top * sy, width: plan.width * sx, height: plan.height * sy };
}

// ---------- PIL-convention resampling ----------

interface Filter {
  support: number;
  fn: (x: number) => number;
}

const sinc = (x: number): number => (x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x));

const FILTERS: Record<Exclude<Interpolation, 'nearest'>, Filter> = {
  box: { support: 0.5, fn: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: {
    support: 1,
    fn: (x) => {
      const a = Math.abs(x);
      return a < 1 ? 1 - a : 0;
    },
  },
  hamming: {
    support: 1,
    fn: (x) => {
      const a = Math.abs(x);
      if (a === 0) return 1;
      if (a >= 1) return 0;
      const p = a * Math.PI;
      return (Math.sin(p) / p) * (0.54 + 0.46 * Math.cos(p));
    },
  },
  bicubic: {
    // Keys' cubic with a = -0.5 (PIL's choice)
    support: 2,
    fn: (x) => {
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
  lanczos: { support: 3, fn: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

const PRECISION_BITS = 32 - 8 - 2;

interface Coefficients {
  /** First input index per output pixel. */
  start: Int32Array;
  /** Number of taps per output pixel. */
  count: Int32Array;
  /** Fixed-point weights, `ksize` slots per output pixel. */
  weights: Int32Array;
  ksize: number;
}

/** Per output pixel: which input pixels and with which fixed-point weights (PIL's precompute_coeffs). */
function coefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const unit = 2 ** PRECISION_BITS;
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const ss = 1 / filterScale;
    // C's (int) cast truncates toward zero
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let total = 0;
    for (let x = 0; x < xmax; x++) {
      w[x] = filter.fn((x + xmin - center + 0.5) * ss);
      total += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const v = total !== 0 ? w[x] / total : w[x];
      weights[o * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * unit) : Math.trunc(0.5 + v * unit);
    }
    start[o] = xmin;
    count[o] = Math.max(xmax, 0);
  }
  return { start, count, weights, ksize };
}

const HALF = 2 ** (PRECISION_BITS - 1);
const UNIT = 2 ** PRECISION_BITS;

function clip8(acc: number): number {
  // arithmetic shift of the fixed-point sum, clamped to 0..255 (PIL's clip8)
  const v = Math.floor(acc / UNIT);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Resizes 8-bit RGB as PIL's Image.resize does (same weights, fixed point and 8-bit intermediate),
 * producing only the output columns [x0, x1) and rows [y0, y1) (the rest of a crop is not computed).
 */
export function resizePil(
  img: RgbImage,
  outW: number,
  outH: number,
  interpolation: Interpolation,
  window: { x0: number; x1: number; y0: number; y1: number } = { x0: 0, x1: outW, y0: 0, y1: outH },
): RgbImage {
  const { width: W, height: H, rgb } = img;
  const wx = Math.max(0, window.x1 - window.x0);
  const wy = Math.max(0, window.y1 - window.y0);
  if (interpolation === 'nearest') {
    // PIL: an affine transform sampling at pixel centres
    const out = new Uint8Array(wx * wy * 3);
    for (let y = 0; y < wy; y++) {
      const sy = Math.min(H - 1, Math.floor(((window.y0 + y + 0.5) * H) / outH));
      for (let x = 0; x < wx; x++) {
        const sx = Math.min(W - 1, Math.floor(((window.x0 + x + 0.5) * W) / outW));
        const s = (sy * W + sx) * 3;
        const o = (y * wx + x) * 3;
        out[o] = rgb[s];
        out[o + 1] = rgb[s + 1];
        out[o + 2] = rgb[s + 2];
      }
    }
    return { rgb: out, width: wx, height: wy };
  }
  const filter = FILTERS[interpolation];
  if (!filter) throw new Error(`image preprocessing: unknown interpolation '${String(interpolation)}'`);
  const needH = outW !== W;
  const needV = outH !== H;
  const cv = coefficients(H, outH, filter);
  // rows of the source the vertical pass reads
  let r0 = 0;
  let r1 = H;
  if (needV) {
    r0 = H;
    r1 = 0;
    for (let y = window.y0; y < window.y1; y++) {
      r0 = Math.min(r0, cv.start[y]);
      r1 = Math.max(r1, cv.start[y] + cv.count[y]);
    }
    if (r1 < r0) r1 = r0;
  } else {
    r0 = window.y0;
    r1 = window.y1;
  }
  // horizontal pass into an 8-bit buffer of rows r0..r1, columns of the window
  const rows = r1 - r0;
  let tmp: Uint8Array;
  if (needH) {
    const ch = coefficients(W, outW, filter);
    tmp = new Uint8Array(rows * wx * 3);
    for (let r = 0; r < rows; r++) {
      const srcRow = (r0 + r) * W * 3;
      for (let x = 0; x < wx; x++) {
        const o = window.x0 + x;
        const s = ch.start[o];
        const n = ch.count[o];
        const k = o * ch.ksize;
        let a0 = HALF;
        let a1 = HALF;
        let a2 = HALF;
        for (let i = 0; i < n; i++) {
          const wgt = ch.weights[k + i];
          const p = srcRow + (s + i) * 3;
          a0 += rgb[p] * wgt;
          a1 += rgb[p + 1] * wgt;
          a2 += rgb[p + 2] * wgt;
        }
        const t = (r * wx + x) * 3;
        tmp[t] = clip8(a0);
        tmp[t + 1] = clip8(a1);
        tmp[t + 2] = clip8(a2);
      }
    }
  } else {
    tmp = new Uint8Array(rows * wx * 3);
    for (let r = 0; r < rows; r++)
      tmp.set(rgb.subarray(((r0 + r) * W + window.x0) * 3, ((r0 + r) * W + window.x0 + wx) * 3), r * wx * 3);
  }
  if (!needV) return { rgb: tmp, width: wx, height: wy };
  const out = new Uint8Array(wx * wy * 3);
  for (let y = 0; y < wy; y++) {
    const o = window.y0 + y;
    const s = cv.start[o] - r0;
    const n = cv.count[o];
    const k = o * cv.ksize;
    for (let x = 0; x < wx; x++) {
      let a0 = HALF;
      let a1 = HALF;
      let a2 = HALF;
      for (let i = 0; i < n; i++) {
        const wgt = cv.weights[k + i];
        const p = ((s + i) * wx + x) * 3;
        a0 += tmp[p] * wgt;
        a1 += tmp[p + 1] * wgt;
        a2 += tmp[p + 2] * wgt;
      }
      const t = (y * wx + x) * 3;
      out[t] = clip8(a0);
      out[t + 1] = clip8(a1);
      out[t + 2] = clip8(a2);
    }
  }
  return { rgb: out, width: wx, height: wy };
}

/**
 * The picture the model sees: the photo resized and centre-cropped (or padded) per `geometry`
 * to outW x outH, 8-bit RGB. Also returns the plan and the photo region it covers.
 */
export function applyGeometry(
  img: RgbImage,
  outW: number,
  outH: number,
  geometry: Geometry,
): { image: RgbImage; plan: GeometryPlan; region: PhotoRegion } {
  const plan = planGeometry(img.width, img.height, outW, outH, geometry);
  const { resizedWidth: rw, resizedHeight: rh, left, top } = plan;
  // the part of the crop window inside the resized image
  const x0 = Math.max(0, left);
  const x1 = Math.min(rw, left + outW);
  const y0 = Math.max(0, top);
  const y1 = Math.min(rh, top + outH);
  const inner = resizePil(img, rw, rh, geometry.interpolation, { x0, x1, y0, y1 });
  let image: RgbImage;
  if (x0 === left && y0 === top && x1 - x0 === outW && y1 - y0 === outH) image = inner;
  else {
    const fill = geometry.fill ?? [0, 0, 0];
    const rgb = new Uint8Array(outW * outH * 3);
    for (let p = 0; p < outW * outH; p++) {
      rgb[p * 3] = fill[0];
      rgb[p * 3 + 1] = fill[1] ?? fill[0];
      rgb[p * 3 + 2] = fill[2] ?? fill[0];
    }
    for (let y = 0; y < inner.height; y++) {
      const dst = ((y + y0 - top) * outW + (x0 - left)) * 3;
      rgb.set(inner.rgb.subarray(y * inner.width * 3, (y + 1) * inner.width * 3), dst);
    }
    image = { rgb, width: outW, height: outH };
  }
  return { image, plan, region: photoRegion(img.width, img.height, plan) };
}

/** One line describing a geometry for a given input size, e.g. "shorter side to 256, centre crop 224x224, bicubic". */
export function describeGeometry(g: Geometry, outW: number, outH: number): string {
  const cropPct = g.cropPct ?? 1;
  const to = g.resizeTo !== undefined ? pair(g.resizeTo) : [Math.floor(outW / cropPct), Math.floor(outH / cropPct)];
  const toText = to[0] === to[1] ? String(to[0]) : `${to[0]}x${to[1]}`;
  const cropped = to[0] !== outW || to[1] !== outH;
  let what: string;
  if (g.resize === 'stretch') what = cropped ? `stretched to ${to[0]}x${to[1]}, centre crop ${outW}x${outH}` : `stretched to ${outW}x${outH}`;
  else if (g.resize === 'shorter-side') what = `shorter side to ${toText}, centre crop ${outW}x${outH}`;
  else what = `longer side to ${toText}, padded${cropped ? ' and cropped' : ''} to ${outW}x${outH}`;
  return `${what}, ${g.interpolation}`;
}
