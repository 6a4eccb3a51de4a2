// What a user, a model folder or a preset says about preprocessing, and how that becomes the
// engine's PreprocessOptions for one model input.

import type { Layout } from '../graph/graph';
import type { PreprocessOptions } from './image';
import { describeGeometry, type Geometry, type Interpolation, type ResizeMode } from './preprocess';

export const SPEC_PRESETS = ['imagenet', 'unit', 'symmetric', 'raw', 'torchvision'] as const;
export type SpecPreset = (typeof SPEC_PRESETS)[number];

/** The preprocessing object (the `lrpLens.preprocessing` setting, `preprocessing.json`, or read from a model folder). */
export interface PreprocessingSpec {
  /** `torchvision` = `imagenet` values with torchvision's classification geometry (shorter side, centre crop 87.5%, bilinear). */
  preset?: SpecPreset;
  mean?: number[];
  std?: number[];
  scale?: number;
  /** Input size for a model that does not declare one. */
  size?: { width: number; height: number };
  channelOrder?: 'rgb' | 'bgr';
  resize?: ResizeMode;
  resizeTo?: number | [number, number];
  cropPct?: number;
  interpolation?: Interpolation;
  /** How the centre crop rounds its offset (Hugging Face floors, torchvision and timm round half to even). */
  cropRounding?: 'round' | 'floor';
  /** RGB 0..255 of padded areas; default: the colour that normalises to 0 in `pad` mode, else black. */
  fill?: number[];
}

/** The torchvision classification preset's geometry: Resize(256), CenterCrop(224), bilinear (for a 224 input). */
export const TORCHVISION_GEOMETRY: Geometry = { resize: 'shorter-side', cropPct: 0.875, interpolation: 'bilinear', cropRounding: 'round' };

export interface ModelInput {
  width: number;
  height: number;
  channels: 1 | 3;
  layout: Layout;
}

const IMAGENET_MEAN = [0.485, 0.456, 0.406];

/** The geometry a spec asks for (defaults: the preset's, else stretch, bilinear). */
export function geometryOf(spec: PreprocessingSpec): Geometry {
  const base: Geometry = spec.preset === 'torchvision' ? TORCHVISION_GEOMETRY : { resize: 'stretch', interpolation: 'bilinear' };
  const g: Geometry = { ...base };
  if (spec.resize !== undefined) g.resize = spec.resize;
  if (spec.interpolation !== undefined) g.interpolation = spec.interpolation;
  if (spec.cropPct !== undefined) g.cropPct = spec.cropPct;
  if (spec.resizeTo !== undefined) g.resizeTo = spec.resizeTo;
  if (spec.cropRounding !== undefined) g.cropRounding = spec.cropRounding;
  if (spec.fill !== undefined) g.fill = spec.fill;
  return g;
}

/** The engine's options for one model input. `defaultPreset` applies when the spec names none. */
export function optionsFromSpec(spec: PreprocessingSpec, input: ModelInput, defaultPreset: SpecPreset = input.channels === 1 ? 'unit' : 'imagenet'): PreprocessOptions {
  const preset = spec.preset ?? defaultPreset;
  const geometry = geometryOf({ ...spec, preset });
  const opts: PreprocessOptions = {
    width: input.width,
    height: input.height,
    channels: input.channels,
    layout: input.layout,
    preset: preset === 'torchvision' ? 'imagenet' : preset,
    ...(spec.mean ? { mean: spec.mean } : {}),
    ...(spec.std ? { std: spec.std } : {}),
    ...(spec.scale !== undefined ? { scale: spec.scale } : {}),
    bgr: spec.channelOrder === 'bgr',
    geometry,
  };
  if (geometry.resize === 'pad' && !geometry.fill) {
    // the colour that normalises to 0 (timm's border fill: round(255 * mean))
    const scale = opts.scale ?? (opts.preset === 'raw' ? 1 : opts.preset === 'symmetric' ? 1 / 127.5 : 1 / 255);
    const mean = opts.mean ?? (opts.preset === 'imagenet' ? IMAGENET_MEAN : opts.preset === 'symmetric' ? [1, 1, 1] : [0, 0, 0]);
    const rgbMean = opts.mean && opts.bgr && mean.length === 3 ? [...mean].reverse() : mean;
    geometry.fill = [0, 1, 2].map((c) => Math.min(255, Math.max(0, Math.round((rgbMean[c] ?? rgbMean[0]) / scale))));
  }
  return opts;
}

const fmt = (xs: number[]): string => xs.map((x) => Number(x.toPrecision(4))).join(', ');

/** One line for the panel, the log and the JSON summary, e.g. "shorter side to 256, centre crop 224x224, bilinear; /255, mean 0.485, ... std ...". */
export function describeOptions(opts: PreprocessOptions): string {
  const geometry = opts.geometry ? describeGeometry(opts.geometry, opts.width, opts.height) : `stretched to ${opts.width}x${opts.height}, bilinear (sharp)`;
  // the preset matters only for the parts not given explicitly
  const parts = opts.scale !== undefined && opts.mean && opts.std ? [] : [`preset ${opts.preset ?? 'unit'}`];
  if (opts.scale !== undefined) parts.push(`scale ${Number(opts.scale.toPrecision(4))}`);
  if (opts.mean) parts.push(`mean ${fmt(opts.mean)}`);
  if (opts.std) parts.push(`std ${fmt(opts.std)}`);
  if (opts.bgr) parts.push('BGR');
  return `${geometry}; ${parts.join(', ')}`;
}
