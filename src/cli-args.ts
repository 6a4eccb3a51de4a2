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
import { PreprocessOptions, Preset } from './engine/io/image';

/** A command-line mistake (exit code 2). */
export class UsageError extends Error {}

export type Values = Record<string, string | boolean | undefined>;

const PRESETS: readonly Preset[] = ['imagenet', 'unit', 'symmetric', 'raw'];

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
  return cfg;
}

/** Preprocessing of images for the loaded model, from --preset/--mean/--std/--bgr. */
export function preprocessFrom(values: Values, ex: Explainer): PreprocessOptions {
  const preset = values.preset as Preset | undefined;
  if (preset !== undefined && !PRESETS.includes(preset))
    throw new UsageError(`--preset: unknown preset '${preset}' (imagenet, unit, symmetric, raw)`);
  const { channels, width, height, layout } = ex.input;
  if (channels !== 1 && channels !== 3)
    throw new UsageError(`${ex.modelPath}: input '${ex.input.name}' has ${channels} channels; images need 1 or 3 (use --input X.npy)`);
  return {
    width,
    height,
    channels,
    layout,
    preset: preset ?? (channels === 1 ? 'unit' : 'imagenet'),
    mean: numberList('mean', values.mean as string | undefined),
    std: numberList('std', values.std as string | undefined),
    bgr: !!values.bgr,
  };
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

/** How to load the model: backend, and the sizes for a model whose input leaves them open. */
export function loadOptionsFrom(values: Values, input?: Tensor): LoadOptions {
  const size = parseSize(values.size as string | undefined);
  return {
    backend: backendArg(values.backend as string | undefined),
    ...(input ? { inputDims: input.dims } : {}),
    ...(size ? { inputSize: { width: size[0], height: size[1] } } : {}),
  };
}
