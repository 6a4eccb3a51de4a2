// Argument helpers shared by the CLI's commands (explain, bench, evaluate).
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { BATCH_IMAGE_EXTENSIONS, listImages } from './explain/batch';
import { BackendChoice } from './backends/backend';
import { BACKEND_CHOICES } from './backends';
import { ConfigError } from './engine/config';
import type { Explainer, LoadOptions } from './explain/explainer';
import type { Tensor } from './engine/graph/graph';
import { readNpy } from './engine/io/npy';
import { COLORMAPS, DEFAULT_PERCENTILE, HEATMAP_VIEWS, mapScale, type BlendOptions, type ColormapName, type HeatmapView, type RelevanceMap } from './engine/io/heatmap';
import { MAX_GAMMA, MIN_GAMMA, MIN_PERCENTILE, MAX_PERCENTILE } from './engine/io/render';
import { PreprocessOptions } from './engine/io/image';
import { INTERPOLATIONS, RESIZE_MODES, type Interpolation, type ResizeMode } from './engine/io/preprocess';
import { SPEC_PRESETS, optionsFromSpec, type PreprocessingSpec, type SpecPreset } from './engine/io/preprocessing-spec';
import { resolveModelConfig, type ModelConfig } from './explain/model-config';
import { parsePreprocessingFile } from './host/settings';

/** A command-line mistake (exit code 2). */
export class UsageError extends Error {}

export type Values = Record<string, string | boolean | undefined>;

/** The preprocessing flags of `explain` and `evaluate` (parseArgs options). */
export const PREPROCESS_OPTIONS = {
  preset: { type: 'string' },
  size: { type: 'string' },
  mean: { type: 'string' },
  std: { type: 'string' },
  bgr: { type: 'boolean' },
  resize: { type: 'string' },
  'resize-to': { type: 'string' },
  'crop-pct': { type: 'string' },
  interpolation: { type: 'string' },
  preprocessing: { type: 'string' },
} as const;

export const PREPROCESS_USAGE = `[--preset imagenet|unit|symmetric|raw|torchvision] [--size WxH]
      [--mean a,b,c] [--std a,b,c] [--bgr] [--resize stretch|shorter-side|pad] [--resize-to N|WxH]
      [--crop-pct F] [--interpolation bilinear|bicubic|nearest|lanczos|box|hamming]
      [--preprocessing FILE.json]`;

/** parseArgs takes '-1' after a flag for an option; join negative numbers to their flag first. */
export function joinNegativeNumbers(args: string[], flags: ReadonlySet<string>): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (flags.has(args[i]) && i + 1 < args.length && /^-[\d.]/.test(args[i + 1])) {
      joined.push(`${args[i]}=${args[i + 1]}`);
      i++;
    } else joined.push(args[i]);
  }
  return joined;
}

export function numberList(flag: string, v: string | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  const out = v.split(',').map((s) => Number(s.trim()));
  if (out.some((x) => !Number.isFinite(x))) throw new UsageError(`--${flag}: expected comma-separated numbers, got '${v}'`);
  return out;
}

export function numberArg(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || v.trim() === '') throw new UsageError(`--${flag}: expected a number, got '${v}'`);
  return x;
}

export function intArg(flag: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new UsageError(`--${flag}: expected an integer >= ${min}, got '${v}'`);
  return n;
}

export function readJsonFile(path: string, what: string): unknown {
  if (!existsSync(path)) throw new UsageError(`${path}: ${what} file not found`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ConfigError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

export function backendArg(v: string | undefined): BackendChoice {
  const b = (v ?? 'auto') as BackendChoice;
  if (!BACKEND_CHOICES.includes(b)) throw new UsageError(`--backend: unknown backend '${v}' (auto, onnxruntime, tfjs)`);
  return b;
}

/** The rules config from --rules plus the single-value flags (validated later by parseRulesConfig). */
export function rulesFrom(values: Values): Record<string, unknown> {
  const raw = values.rules ? readJsonFile(values.rules as string, 'rules') : {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ConfigError(`${values.rules}: the rules config must be a JSON object`);
  const cfg = raw as Record<string, unknown>;
  if (values.composite !== undefined) cfg.composite = values.composite;
  if (values.epsilon !== undefined) cfg.epsilon = numberArg('epsilon', values.epsilon as string);
  if (values.gamma !== undefined) cfg.gamma = numberArg('gamma', values.gamma as string);
  if (values.init !== undefined) cfg.init = values.init;
  if (values.attention !== undefined) cfg.attention = values.attention;
  if (values['batch-norm'] !== undefined) cfg.batchNorm = values['batch-norm'];
  return cfg;
}

const GEOMETRY_FLAGS = ['preset', 'mean', 'std', 'bgr', 'resize', 'resize-to', 'crop-pct', 'interpolation', 'preprocessing'] as const;

/** Whether the command line says anything about preprocessing (then it replaces what the model folder says). */
export function hasPreprocessingFlags(values: Values): boolean {
  return GEOMETRY_FLAGS.some((f) => values[f] !== undefined && values[f] !== false);
}

/** The user's preprocessing from --preprocessing FILE.json and the single flags on top, or undefined when none is given. */
export function userSpecFrom(values: Values): { spec: PreprocessingSpec; source: string } | undefined {
  if (!hasPreprocessingFlags(values)) return undefined;
  const file = values.preprocessing as string | undefined;
  let spec: PreprocessingSpec = {};
  if (file) {
    if (!existsSync(file)) throw new UsageError(`${file}: preprocessing file not found`);
    spec = parsePreprocessingFile(readFileSync(file, 'utf8'), file);
  }
  const preset = values.preset as string | undefined;
  if (preset !== undefined) {
    if (!(SPEC_PRESETS as readonly string[]).includes(preset))
      throw new UsageError(`--preset: unknown preset '${preset}' (${SPEC_PRESETS.join(', ')})`);
    spec = { ...spec, preset: preset as SpecPreset };
  }
  const mean = numberList('mean', values.mean as string | undefined);
  const std = numberList('std', values.std as string | undefined);
  if (mean) spec = { ...spec, mean };
  if (std) spec = { ...spec, std };
  if (values.bgr) spec = { ...spec, channelOrder: 'bgr' };
  const resize = values.resize as string | undefined;
  if (resize !== undefined) {
    if (!(RESIZE_MODES as readonly string[]).includes(resize)) throw new UsageError(`--resize: unknown mode '${resize}' (${RESIZE_MODES.join(', ')})`);
    spec = { ...spec, resize: resize as ResizeMode };
  }
  const interp = values.interpolation as string | undefined;
  if (interp !== undefined) {
    if (!(INTERPOLATIONS as readonly string[]).includes(interp))
      throw new UsageError(`--interpolation: unknown '${interp}' (${INTERPOLATIONS.join(', ')})`);
    spec = { ...spec, interpolation: interp as Interpolation };
  }
  const cropPct = numberArg('crop-pct', values['crop-pct'] as string | undefined);
  if (cropPct !== undefined) {
    if (!(cropPct > 0 && cropPct <= 1)) throw new UsageError(`--crop-pct: expected a number in (0, 1], got '${values['crop-pct']}'`);
    spec = { ...spec, cropPct };
  }
  const to = values['resize-to'] as string | undefined;
  if (to !== undefined) {
    const m = /^\s*(\d+)(?:\s*[xX]\s*(\d+))?\s*$/.exec(to);
    if (!m || Number(m[1]) < 1 || (m[2] !== undefined && Number(m[2]) < 1)) throw new UsageError(`--resize-to: expected N or WxH, got '${to}'`);
    spec = { ...spec, resizeTo: m[2] === undefined ? Number(m[1]) : [Number(m[1]), Number(m[2])] };
  }
  return { spec, source: file ? `${file} and the command line` : 'command line' };
}

/**
 * Preprocessing and labels of a model: the flags (and --labels) when given, else the model folder
 * (preprocessing.json, labels.txt, Hugging Face, timm, ONNX metadata), else the defaults
 * (`imagenet`, `unit` for 1-channel models). Each comes with its source. Read before the model
 * loads: a folder's input size fixes a model's open dimensions.
 */
export async function cliModelConfig(values: Values, modelPath: string): Promise<ModelConfig> {
  const labelsPath = values.labels as string | undefined;
  if (labelsPath && !existsSync(labelsPath)) throw new UsageError(`${labelsPath}: labels file not found`);
  const config = await resolveModelConfig({ modelPath, user: userSpecFrom(values), labelsPath });
  for (const w of config.warnings) process.stderr.write(`warning: ${w}\n`);
  return config;
}

/** The engine's preprocessing options for the loaded model. */
export function preprocessFor(config: ModelConfig, ex: Explainer): PreprocessOptions {
  const { channels, width, height, layout } = ex.input;
  if (channels !== 1 && channels !== 3)
    throw new UsageError(`${ex.modelPath}: input '${ex.input.name}' has ${channels} channels; images need 1 or 3 (use --input X.npy)`);
  return optionsFromSpec(config.preprocessing, { width, height, channels, layout });
}

export function parseSize(v: string | undefined): [number, number] | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)x(\d+)$/i.exec(v.trim());
  if (!m) throw new UsageError(`--size: expected WxH, e.g. 224x224, got '${v}'`);
  return [Number(m[1]), Number(m[2])];
}

/** The images of an `--images DIR` folder, checked for a batch that writes into `--out DIR`. */
export function folderImages(dir: string, outDir: string): string[] {
  let files: string[];
  try {
    files = listImages(dir);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (!files.length) throw new UsageError(`${dir}: no images (${BATCH_IMAGE_EXTENSIONS.join(', ')})`);
  if (resolve(outDir) === resolve(dir)) throw new UsageError('--out: use another folder than --images');
  return files;
}

/** Read the --input .npy (before the model loads: its shape fixes a model's open dimensions). */
export function readInputNpy(path: string): Tensor {
  if (!existsSync(path)) throw new UsageError(`${path}: input file not found`);
  return readNpy(new Uint8Array(readFileSync(path)), path);
}

/** How to load the model: backend, and the sizes for a model whose input leaves them open (--size, else the model folder's). */
export function loadOptionsFrom(values: Values, input?: Tensor, folderSize?: { width: number; height: number }): LoadOptions {
  const size = parseSize(values.size as string | undefined);
  const inputSize = size ? { width: size[0], height: size[1] } : folderSize;
  return {
    backend: backendArg(values.backend as string | undefined),
    ...(input ? { inputDims: input.dims } : {}),
    ...(inputSize ? { inputSize } : {}),
  };
}

/** The flags that shape a heatmap picture (explain, single and folder). */
export const HEATMAP_OPTIONS = {
  'heatmap-mode': { type: 'string' },
  'heatmap-percentile': { type: 'string' },
  'heatmap-gamma': { type: 'string' },
  colormap: { type: 'string' },
} as const;

export const HEATMAP_USAGE = `[--heatmap-mode overlay|alone|side] [--heatmap-percentile P] [--heatmap-gamma G]
      [--colormap bwr|coldnhot|seismic|hot|gray]`;

/** --heatmap-mode, --heatmap-percentile, --heatmap-gamma and --colormap, checked. */
export function heatmapArgs(values: Values): BlendOptions & { view: HeatmapView; percentile: number } {
  const view = (values['heatmap-mode'] ?? 'overlay') as HeatmapView;
  if (!HEATMAP_VIEWS.includes(view))
    throw new UsageError(`--heatmap-mode: unknown '${values['heatmap-mode']}' (${HEATMAP_VIEWS.join(', ')})`);
  const percentile = numberArg('heatmap-percentile', values['heatmap-percentile'] as string | undefined) ?? DEFAULT_PERCENTILE;
  if (percentile < MIN_PERCENTILE || percentile > MAX_PERCENTILE)
    throw new UsageError(`--heatmap-percentile: expected a percentile from ${MIN_PERCENTILE} to ${MAX_PERCENTILE} (100 = the maximum |R|), got '${values['heatmap-percentile']}'`);
  const gamma = numberArg('heatmap-gamma', values['heatmap-gamma'] as string | undefined) ?? 1;
  if (gamma < MIN_GAMMA || gamma > MAX_GAMMA)
    throw new UsageError(`--heatmap-gamma: expected a number from ${MIN_GAMMA} to ${MAX_GAMMA}, got '${values['heatmap-gamma']}'`);
  const colormap = (values.colormap ?? 'bwr') as ColormapName;
  if (!COLORMAPS.includes(colormap)) throw new UsageError(`--colormap: unknown '${values.colormap}' (${COLORMAPS.join(', ')})`);
  return { view, percentile, gamma, colormap };
}

/** How a written heatmap was scaled, for --out-json. */
export function heatmapSummary(map: RelevanceMap, o: { view: HeatmapView; percentile: number; gamma?: number; colormap?: ColormapName }): Record<string, unknown> {
  const s = mapScale(map.data, o.percentile);
  return { view: o.view, colormap: o.colormap ?? 'bwr', percentile: s.percentile, scale: s.value, maxAbs: s.max, clipped: s.clipped, gamma: o.gamma ?? 1 };
}
