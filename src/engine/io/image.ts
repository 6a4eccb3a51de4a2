// Image decoding (sharp) and preprocessing into model input tensors.

import { promises as fs } from 'fs';
import sharp from 'sharp';
import type { Layout, Tensor } from '../graph/graph';
import { resizeBilinear } from './resample';
import { applyGeometry, type Geometry, type PhotoRegion } from './preprocess';

export { resizeBilinear };

/** A decoded 8-bit RGB image, pixels interleaved row by row (HWC, 3 channels). */
export interface RgbImage {
  rgb: Uint8Array;
  width: number;
  height: number;
}

export type Preset = 'imagenet' | 'unit' | 'symmetric' | 'raw';

export interface PreprocessOptions {
  width: number;
  height: number;
  channels: 1 | 3;
  layout: Layout;
  /** Normalisation preset (default 'unit'). Explicit mean/std/scale override its parts. */
  preset?: Preset;
  /** Per model channel (after `bgr`), or one value for all channels; applied as (x * scale - mean) / std. */
  mean?: number[];
  std?: number[];
  scale?: number;
  /** Feed channels in B, G, R order. Preset mean/std follow their colours; explicit ones are in model order. */
  bgr?: boolean;
  /**
   * Resize, crop and resampling with PIL's conventions (engine/io/preprocess.ts). Without it the
   * image is stretched to the input size in sharp (bilinear).
   */
  geometry?: Geometry;
}

/** Largest image we decode (width x height); larger inputs are refused before decoding. */
export const MAX_INPUT_PIXELS = 10000 * 10000;

// ---------- normalisation ----------

interface Normalisation {
  scale: number;
  mean: number[]; // RGB order for 3 channels
  std: number[];
}

const PRESETS: Record<Preset, Normalisation> = {
  imagenet: { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  unit: { scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1] },
  symmetric: { scale: 1 / 127.5, mean: [1, 1, 1], std: [1, 1, 1] },
  raw: { scale: 1, mean: [0, 0, 0], std: [1, 1, 1] },
};

const average = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Preset values in model channel order: averaged for grey input, reversed for BGR. */
function presetInModelOrder(values: number[], opts: PreprocessOptions): number[] {
  if (opts.channels === 1) return [average(values)];
  return opts.bgr ? [...values].reverse() : [...values];
}

function perChannel(values: number[], channels: number, what: string): number[] {
  if (values.length === channels) return values;
  if (values.length === 1) return new Array<number>(channels).fill(values[0]);
  throw new Error(`image preprocessing: ${what} has ${values.length} values but the model takes ${channels} channel(s)`);
}

/** The effective scale, mean and std per model channel. */
function normalisation(opts: PreprocessOptions): Normalisation {
  const preset = PRESETS[opts.preset ?? 'unit'];
  if (!preset) throw new Error(`image preprocessing: unknown preset '${String(opts.preset)}'`);
  const mean = opts.mean ?? presetInModelOrder(preset.mean, opts);
  const std = opts.std ?? presetInModelOrder(preset.std, opts);
  const n = {
    scale: opts.scale ?? preset.scale,
    mean: perChannel(mean, opts.channels, 'mean'),
    std: perChannel(std, opts.channels, 'std'),
  };
  if (n.std.some((s) => s === 0)) throw new Error('image preprocessing: std must not be 0');
  return n;
}

/** What pixel values 0 and 255 become after normalisation, per model channel (for the LRP zbox rule). */
export function inputBoundsFor(opts: PreprocessOptions): { low: number[]; high: number[] } {
  const n = normalisation(opts);
  const at = (v: number): number[] => n.mean.map((m, c) => (v * n.scale - m) / n.std[c]);
  return { low: at(0), high: at(255) };
}

// ---------- pixels ----------


/** ITU-R BT.601 luma weights. */
const LUMA = [0.299, 0.587, 0.114];

/** Pixel values per model channel for pixel p (RGB, BGR, or luminance), in 0..255. */
function channelValues(rgb: ArrayLike<number>, p: number, opts: PreprocessOptions): number[] {
  const r = rgb[p * 3];
  const g = rgb[p * 3 + 1];
  const b = rgb[p * 3 + 2];
  if (opts.channels === 1) return [LUMA[0] * r + LUMA[1] * g + LUMA[2] * b];
  return opts.bgr ? [b, g, r] : [r, g, b];
}

function validateSize(opts: PreprocessOptions): void {
  const ok = (v: number): boolean => Number.isInteger(v) && v > 0;
  if (!ok(opts.width) || !ok(opts.height)) {
    throw new Error(`image preprocessing: bad input size ${opts.width}x${opts.height}`);
  }
  if (opts.channels !== 1 && opts.channels !== 3) {
    throw new Error(`image preprocessing: channels must be 1 or 3, not ${String(opts.channels)}`);
  }
}

/**
 * The numeric part of preprocessing: an RGB image to a float32 tensor with batch axis 1
 * ([1,C,H,W] or [1,H,W,C]). If the image is not already opts.width x opts.height it is resized
 * here (plain bilinear); loadImageTensor resizes in sharp first, which filters better when shrinking.
 */
export function preprocess(img: RgbImage, opts: PreprocessOptions): Tensor {
  validateSize(opts);
  const { width: W, height: H, channels: C } = opts;
  const src: ArrayLike<number> =
    img.width === W && img.height === H ? img.rgb : resizeBilinear(img.rgb, img.width, img.height, 3, W, H);
  const n = normalisation(opts);
  const out = new Float32Array(W * H * C);
  const nchw = opts.layout === 'NCHW';
  for (let p = 0; p < W * H; p++) {
    const values = channelValues(src, p, opts);
    for (let c = 0; c < C; c++) {
      out[nchw ? c * W * H + p : p * C + c] = (values[c] * n.scale - n.mean[c]) / n.std[c];
    }
  }
  return { dtype: 'float32', dims: nchw ? [1, C, H, W] : [1, H, W, C], data: out };
}

// ---------- decoding ----------

function reasonFor(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  if (/unsupported image format/i.test(msg)) return 'not an image, or a format sharp cannot read';
  if (/pixel limit/i.test(msg)) return `image too large (more than ${MAX_INPUT_PIXELS} pixels): ${msg}`;
  if (/read error|truncat|premature|corrupt|crc|invalid|damaged|bad/i.test(msg)) {
    return `corrupt or truncated image data (${msg})`;
  }
  return msg;
}

async function readFileFor(path: string): Promise<Buffer> {
  try {
    return await fs.readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new Error(`${path}: cannot read image: ${why}`);
  }
}

/**
 * Decode an image file to 8-bit RGB: PNG, JPEG, WebP, GIF (first frame), TIFF and whatever else sharp reads.
 * EXIF orientation is applied, alpha composited over white, grey expanded to RGB, 16-bit reduced to 8-bit.
 * Corrupt or truncated data is rejected with an Error naming the file.
 */
export async function decodeImage(path: string): Promise<RgbImage> {
  const bytes = await readFileFor(path);
  try {
    const { data, info } = await sharp(bytes, { failOn: 'warning', autoOrient: true, limitInputPixels: MAX_INPUT_PIXELS })
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (err) {
    throw new Error(`${path}: cannot decode image: ${reasonFor(err)}`);
  }
}

/** Resize an RGB image to exactly width x height (bilinear, aspect ratio not kept) in sharp. */
export async function resizeImage(img: RgbImage, width: number, height: number): Promise<RgbImage> {
  if (img.width === width && img.height === height) return img;
  const { data, info } = await sharp(img.rgb, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
}

/** An image file as the model receives it. */
export interface LoadedImage {
  tensor: Tensor;
  /** The decoded photo (for blending heatmaps). */
  original: RgbImage;
  /** The picture the model saw: resized and cropped or padded, before normalisation. */
  input: RgbImage;
  /** The part of the original photo the input covers, in original pixels (may reach outside it when padded). */
  region: PhotoRegion;
}

/** The geometry and normalisation of `opts` applied to a decoded image. */
export async function imageTensor(original: RgbImage, opts: PreprocessOptions): Promise<Omit<LoadedImage, 'original'>> {
  validateSize(opts);
  if (opts.geometry) {
    const { image, region } = applyGeometry(original, opts.width, opts.height, opts.geometry);
    return { tensor: preprocess(image, opts), input: image, region };
  }
  const resized = await resizeImage(original, opts.width, opts.height);
  return { tensor: preprocess(resized, opts), input: resized, region: { x: 0, y: 0, width: original.width, height: original.height } };
}

/** Decode, resize and normalise an image file; also returns the decoded original and what the model saw. */
export async function loadImageTensor(path: string, opts: PreprocessOptions): Promise<LoadedImage> {
  validateSize(opts);
  const original = await decodeImage(path);
  return { ...(await imageTensor(original, opts)), original };
}
