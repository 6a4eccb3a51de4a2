// What exported models already carry about their preprocessing and labels: Hugging Face exports
// (config.json + preprocessor_config.json beside model.onnx or onnx/model.onnx), timm's config.json
// (pretrained_cfg, label_names) and ONNX metadata_props (the Image.* keys of the ONNX metadata
// convention, class names). Pure readers: the caller decides the order against user settings.

import { promises as fs } from 'fs';
import * as path from 'path';
import { PIL_RESAMPLE, INTERPOLATIONS, type Interpolation } from './preprocess';
import type { PreprocessingSpec } from './preprocessing-spec';

/** Something found in a model folder, with where it came from (for the panel and the JSON summary). */
export interface Found<T> {
  value: T;
  /** Human-readable origin, e.g. "preprocessor_config.json (Hugging Face ConvNextImageProcessor)". */
  source: string;
  file: string;
}

export interface FolderFindings {
  preprocessing?: Found<PreprocessingSpec>;
  labels?: Found<string[]>;
  /** Problems with files that were found but could not be used (shown, not fatal). */
  warnings: string[];
}

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const numList = (v: unknown): number[] | undefined => (Array.isArray(v) && v.length > 0 && v.every(isNum) ? (v as number[]) : undefined);

async function readJson(file: string): Promise<Json | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (!isObj(v)) throw new Error(`${file}: expected a JSON object`);
  return v;
}

// ---------- Hugging Face ----------

/** An image processor's `size`: {shortest_edge}, {height, width}, {longest_edge} or a plain number. */
function hfSize(v: unknown): { shortest?: number; height?: number; width?: number } | undefined {
  if (isNum(v)) return { shortest: v };
  if (!isObj(v)) return undefined;
  if (isNum(v.shortest_edge)) return { shortest: v.shortest_edge };
  if (isNum(v.height) && isNum(v.width)) return { height: v.height, width: v.width };
  return undefined;
}

function hfCropSize(v: unknown): { height: number; width: number } | undefined {
  if (isNum(v)) return { height: v, width: v };
  if (isObj(v) && isNum(v.height) && isNum(v.width)) return { height: v.height, width: v.width };
  return undefined;
}

/**
 * A Hugging Face image processor config (preprocessor_config.json) as a spec, following the
 * processors' PIL ("slow") implementation: resize (shortest_edge keeps the aspect ratio, the
 * longer side becomes int(S * long / short); height/width stretch), the optional centre crop
 * (offsets rounded down), rescale and normalise. ConvNeXt processors below 384 resize the
 * shorter side to int(shortest_edge / crop_pct) and crop shortest_edge x shortest_edge; at 384
 * and above they stretch to a square.
 */
export function specFromHfProcessor(cfg: Json, file: string): { spec: PreprocessingSpec; kind: string } {
  const kind = String(cfg.image_processor_type ?? cfg.feature_extractor_type ?? 'image processor');
  const spec: PreprocessingSpec = { cropRounding: 'floor', channelOrder: 'rgb' };
  const resampleCode = cfg.resample === undefined ? 2 : cfg.resample;
  const interpolation = isNum(resampleCode) ? PIL_RESAMPLE[resampleCode] : undefined;
  if (!interpolation) throw new Error(`${file}: 'resample' should be a PIL filter code 0-5, got ${JSON.stringify(cfg.resample)}`);
  spec.interpolation = interpolation;

  const doResize = cfg.do_resize !== false;
  const doCrop = cfg.do_center_crop === true;
  const size = hfSize(cfg.size);
  const crop = hfCropSize(cfg.crop_size);
  const isConvNext = /convnext/i.test(kind);
  if (doResize && size === undefined && cfg.size !== undefined) throw new Error(`${file}: unsupported 'size' ${JSON.stringify(cfg.size)}`);
  if (doResize && size) {
    if (isConvNext && size.shortest !== undefined) {
      const se = size.shortest;
      const cropPct = isNum(cfg.crop_pct) ? cfg.crop_pct : 224 / 256;
      if (se < 384) {
        spec.resize = 'shorter-side';
        spec.resizeTo = Math.floor(se / cropPct);
      } else {
        spec.resize = 'stretch';
        spec.resizeTo = se;
      }
      spec.size = { width: se, height: se };
    } else if (size.shortest !== undefined) {
      spec.resize = 'shorter-side';
      spec.resizeTo = size.shortest;
      spec.size = crop && doCrop ? { width: crop.width, height: crop.height } : { width: size.shortest, height: size.shortest };
    } else if (size.width !== undefined && size.height !== undefined) {
      spec.resize = 'stretch';
      spec.resizeTo = [size.width, size.height];
      spec.size = crop && doCrop ? { width: crop.width, height: crop.height } : { width: size.width, height: size.height };
    }
  } else if (doCrop && crop) {
    spec.resize = 'stretch';
    spec.size = { width: crop.width, height: crop.height };
  }

  if (cfg.do_rescale === false) spec.scale = 1;
  else spec.scale = isNum(cfg.rescale_factor) ? cfg.rescale_factor : 1 / 255;
  if (cfg.do_normalize === false) {
    spec.mean = [0];
    spec.std = [1];
  } else {
    spec.mean = numList(cfg.image_mean) ?? [0.5, 0.5, 0.5];
    spec.std = numList(cfg.image_std) ?? [0.5, 0.5, 0.5];
  }
  spec.preset = 'raw'; // scale, mean and std are all explicit
  return { spec, kind };
}

/** `id2label` of a transformers config.json, as a list by class index. */
export function labelsFromId2Label(v: unknown, file: string): string[] | undefined {
  if (!isObj(v)) return undefined;
  const out: string[] = [];
  for (const [k, label] of Object.entries(v)) {
    if (!/^\d+$/.test(k)) throw new Error(`${file}: id2label keys should be class indices, found "${k}"`);
    out[Number(k)] = String(label);
  }
  for (let i = 0; i < out.length; i++) if (out[i] === undefined) out[i] = `class ${i}`;
  return out.length ? out : undefined;
}

// ---------- timm ----------

/**
 * timm's pretrained_cfg as a spec, following timm.data.transforms_imagenet_eval: crop_mode
 * `center` (default) resizes the shorter side to floor(size / crop_pct) and centre-crops;
 * `squash` stretches both sides to floor(size / crop_pct) and centre-crops; `border` fits the
 * longer side, pads with round(255 * mean) and centre-crops. Crop offsets round half to even.
 */
export function specFromTimm(cfg: Json, file: string): PreprocessingSpec {
  const spec: PreprocessingSpec = { cropRounding: 'round', channelOrder: 'rgb', preset: 'imagenet' };
  const inputSize = numList(cfg.input_size);
  if (inputSize && inputSize.length === 3) spec.size = { width: inputSize[2], height: inputSize[1] };
  const interp = cfg.interpolation === undefined ? 'bilinear' : cfg.interpolation;
  if (typeof interp !== 'string' || !(INTERPOLATIONS as readonly string[]).includes(interp))
    throw new Error(`${file}: pretrained_cfg.interpolation ${JSON.stringify(cfg.interpolation)} is not one of ${INTERPOLATIONS.join(', ')}`);
  spec.interpolation = interp as Interpolation;
  const cropPct = isNum(cfg.crop_pct) ? cfg.crop_pct : 0.875;
  spec.cropPct = cropPct;
  const mode = cfg.crop_mode ?? 'center';
  if (mode === 'squash') spec.resize = 'stretch';
  else if (mode === 'border') spec.resize = 'pad';
  else if (mode === 'center') spec.resize = 'shorter-side';
  else throw new Error(`${file}: pretrained_cfg.crop_mode ${JSON.stringify(mode)} is not center, squash or border`);
  const mean = numList(cfg.mean);
  const std = numList(cfg.std);
  if (mean) spec.mean = mean;
  if (std) spec.std = std;
  spec.scale = 1 / 255; // timm's ToTensor
  if (mode === 'border' && mean) spec.fill = mean.map((m) => Math.round(255 * m));
  return spec;
}

// ---------- ONNX metadata ----------

function readVarint(b: Uint8Array, pos: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (;;) {
    if (pos >= b.length) throw new Error('truncated varint');
    const byte = b[pos++];
    v += (byte & 0x7f) * mul;
    if (byte < 0x80) return [v, pos];
    mul *= 128;
  }
}

/**
 * The metadata_props of an ONNX ModelProto (field 14), read by walking the top-level protobuf
 * fields and skipping the rest (no full decode of the weights).
 */
export function onnxMetadata(bytes: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  const dec = new TextDecoder();
  let pos = 0;
  while (pos < bytes.length) {
    let tag: number;
    [tag, pos] = readVarint(bytes, pos);
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) [, pos] = readVarint(bytes, pos);
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      let len: number;
      [len, pos] = readVarint(bytes, pos);
      if (field === 14) {
        const entry = bytes.subarray(pos, pos + len);
        let p = 0;
        let key = '';
        let value = '';
        while (p < entry.length) {
          let t: number;
          [t, p] = readVarint(entry, p);
          if ((t & 7) !== 2) break;
          let l: number;
          [l, p] = readVarint(entry, p);
          const s = dec.decode(entry.subarray(p, p + l));
          if (t >> 3 === 1) key = s;
          else if (t >> 3 === 2) value = s;
          p += l;
        }
        if (key) out[key] = value;
      }
      pos += len;
    } else throw new Error(`unexpected protobuf wire type ${wire}`);
  }
  return out;
}

/**
 * Class names from a metadata value: a JSON array or object, a Python dict literal
 * (`{0: 'person', 1: 'bicycle'}`, as Ultralytics writes `names`), or one name per line or comma.
 */
export function parseNameList(text: string): string[] | undefined {
  const t = text.trim();
  if (!t) return undefined;
  try {
    const v = JSON.parse(t) as unknown;
    if (Array.isArray(v)) return v.map(String);
    if (isObj(v)) return labelsFromId2Label(v, 'metadata');
  } catch {
    // not JSON
  }
  if (t.startsWith('{')) {
    const out: string[] = [];
    const re = /(\d+)\s*:\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")/g;
    let m: RegExpExecArray | null;
    while ((m = re.exec(t))) out[Number(m[1])] = (m[2] ?? m[3]).replace(/\\(.)/g, '$1');
    for (let i = 0; i < out.length; i++) if (out[i] === undefined) out[i] = `class ${i}`;
    return out.length ? out : undefined;
  }
  const parts = t.includes('\n') ? t.split(/\r?\n/) : t.split(',');
  const names = parts.map((s) => s.trim()).filter((s) => s.length);
  return names.length > 1 ? names : undefined;
}

const LABEL_KEYS = ['names', 'labels', 'classes', 'class_names'];

/** Preprocessing from the ONNX metadata convention's Image.* keys (pixel range and format). */
export function specFromOnnxMetadata(meta: Record<string, string>): PreprocessingSpec | undefined {
  const format = meta['Image.BitmapPixelFormat'];
  const range = meta['Image.NominalPixelRange'];
  if (format === undefined && range === undefined) return undefined;
  const spec: PreprocessingSpec = {};
  if (range !== undefined) {
    const presets: Record<string, PreprocessingSpec['preset']> = {
      NominalRange_0_255: 'raw',
      Normalized_0_1: 'unit',
      Normalized_1_1: 'symmetric',
    };
    const p = presets[range];
    if (!p) throw new Error(`Image.NominalPixelRange '${range}' is not supported (NominalRange_0_255, Normalized_0_1, Normalized_1_1)`);
    spec.preset = p;
  }
  if (format !== undefined) {
    if (/^Bgr/i.test(format)) spec.channelOrder = 'bgr';
    else if (/^(Rgb|Gray)/i.test(format)) spec.channelOrder = 'rgb';
    else throw new Error(`Image.BitmapPixelFormat '${format}' is not supported (Rgb8, Bgr8, Rgba8, Bgra8, Gray8)`);
  }
  return spec;
}

// ---------- the folder ----------

/** Folders to look in: the model's, and its parent when the model sits in `onnx/` (Optimum's layout). */
function folders(modelPath: string): string[] {
  const dir = path.dirname(modelPath);
  return path.basename(dir) === 'onnx' ? [dir, path.dirname(dir)] : [dir];
}

/**
 * Reads what a model's folder says about preprocessing and labels: Hugging Face
 * preprocessor_config.json and config.json (id2label), timm config.json (pretrained_cfg,
 * label_names), then the ONNX file's metadata_props. The first source found wins for each.
 */
export async function readModelFolder(modelPath: string): Promise<FolderFindings> {
  const found: FolderFindings = { warnings: [] };
  const attempt = async (f: () => Promise<void>): Promise<void> => {
    try {
      await f();
    } catch (e) {
      found.warnings.push((e as Error).message);
    }
  };
  for (const dir of folders(modelPath)) {
    const cfgFile = path.join(dir, 'config.json');
    const procFile = path.join(dir, 'preprocessor_config.json');
    await attempt(async () => {
      const proc = await readJson(procFile);
      if (proc && !found.preprocessing) {
        const { spec, kind } = specFromHfProcessor(proc, procFile);
        found.preprocessing = { value: spec, source: `${path.basename(procFile)} (Hugging Face ${kind})`, file: procFile };
      }
    });
    await attempt(async () => {
      const cfg = await readJson(cfgFile);
      if (!cfg) return;
      if (isObj(cfg.pretrained_cfg)) {
        if (!found.preprocessing)
          found.preprocessing = { value: specFromTimm(cfg.pretrained_cfg, cfgFile), source: `${path.basename(cfgFile)} pretrained_cfg (timm)`, file: cfgFile };
        const names = Array.isArray(cfg.label_names) ? cfg.label_names.map(String) : undefined;
        if (names?.length && !found.labels) found.labels = { value: names, source: `${path.basename(cfgFile)} label_names (timm)`, file: cfgFile };
      }
      const id2label = labelsFromId2Label(cfg.id2label, cfgFile);
      if (id2label && !found.labels) found.labels = { value: id2label, source: `${path.basename(cfgFile)} id2label (Hugging Face)`, file: cfgFile };
    });
  }
  if (modelPath.toLowerCase().endsWith('.onnx') && (!found.preprocessing || !found.labels)) {
    await attempt(async () => {
      let meta: Record<string, string>;
      try {
        meta = onnxMetadata(new Uint8Array(await fs.readFile(modelPath)));
      } catch {
        return; // an unreadable or broken model: loading it says why
      }
      if (!found.preprocessing) {
        try {
          const spec = specFromOnnxMetadata(meta);
          if (spec) found.preprocessing = { value: spec, source: `${path.basename(modelPath)} metadata (Image.*)`, file: modelPath };
        } catch (e) {
          found.warnings.push(`${modelPath}: metadata ${(e as Error).message}`);
        }
      }
      if (!found.labels) {
        for (const key of LABEL_KEYS) {
          const names = meta[key] !== undefined ? parseNameList(meta[key]) : undefined;
          if (names) {
            found.labels = { value: names, source: `${path.basename(modelPath)} metadata '${key}'`, file: modelPath };
            break;
          }
        }
      }
    });
  }
  return found;
}
