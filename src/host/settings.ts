// The `lrpLens.*` settings: parsing and validation. Pure (no `vscode` import) so it is unit-tested
// directly; src/host/config.ts reads the raw values from VS Code and hands them here.
import * as path from 'node:path';
import { ATTENTION_MODES, COMPOSITE_NAMES, ConfigError, parseRulesConfig, type RulesConfig } from '../engine/config';
import {
  COLORMAP_NAMES,
  COMPARE_METHODS,
  DEFAULT_COMPARE,
  DEFAULT_VIEW,
  HEATMAP_VIEWS,
  MAX_COMPARE,
  isHeatmapGamma,
  isPercentile,
  type ColormapName,
  type CompareMethod,
  type HeatmapView,
  type RuleChoice,
  type ViewOptions,
} from '../protocol';
import { INTERPOLATIONS, RESIZE_MODES, type Interpolation, type ResizeMode } from '../engine/io/preprocess';
import { SPEC_PRESETS, type PreprocessingSpec } from '../engine/io/preprocessing-spec';

export const SECTION = 'lrpLens';

export const PRESETS = SPEC_PRESETS;
export type Preset = (typeof PRESETS)[number];

export const BACKENDS = ['auto', 'onnxruntime', 'tfjs'] as const;
export type Backend = (typeof BACKENDS)[number];

/**
 * The preprocessing object: normalisation (`preset`, `mean`, `std`, `scale`, `channelOrder`),
 * `size` for models that do not declare one, and geometry (`resize`, `resizeTo`, `cropPct`,
 * `interpolation`; see engine/io/preprocess.ts).
 */
export interface Preprocessing extends PreprocessingSpec {
  preset: Preset;
  channelOrder: 'rgb' | 'bgr';
}

export interface Settings {
  modelPath?: string;
  labelsPath?: string;
  preprocessing: Preprocessing;
  /** Whether `lrpLens.preprocessing` is set (else a `preprocessing.json` beside the model may apply). */
  preprocessingFromSetting: boolean;
  rules: RulesConfig;
  backend: Backend;
  colormap: ColormapName;
  /** `lrpLens.heatmap.*`: the default view, the scale's percentile and the contrast. */
  heatmap: HeatmapSettings;
}

export interface HeatmapSettings {
  view: HeatmapView;
  percentile: number;
  gamma: number;
}

/** What VS Code's configuration returns for each key (unknown until checked). */
export interface RawSettings {
  modelPath?: unknown;
  labelsPath?: unknown;
  preprocessing?: unknown;
  rules?: unknown;
  backend?: unknown;
  colormap?: unknown;
  heatmapView?: unknown;
  heatmapPercentile?: unknown;
  heatmapGamma?: unknown;
}

/** An invalid setting; `setting` is the full key, e.g. `lrpLens.preprocessing`. */
export class SettingsError extends Error {
  constructor(
    readonly setting: string,
    detail: string,
  ) {
    super(`Setting '${setting}': ${detail}`);
    this.name = 'SettingsError';
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optString(key: string, v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new SettingsError(`${SECTION}.${key}`, `must be a string (got ${JSON.stringify(v)})`);
  const t = v.trim();
  return t.length ? t : undefined;
}

function numberList(key: string, v: unknown, positive: boolean): number[] {
  if (!Array.isArray(v) || (v.length !== 1 && v.length !== 3))
    throw new SettingsError(key, 'must be an array of 1 or 3 numbers (one per channel)');
  for (const x of v) {
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new SettingsError(key, `must hold numbers only (got ${JSON.stringify(x)})`);
    if (positive && x <= 0) throw new SettingsError(key, `must hold positive numbers (got ${x})`);
  }
  return v as number[];
}

/** Accepts 224, [224, 224], {"width":224,"height":224} or "224x224". */
export function parseSize(key: string, v: unknown): { width: number; height: number } {
  let w: unknown;
  let h: unknown;
  if (typeof v === 'number') w = h = v;
  else if (Array.isArray(v) && v.length === 2) [w, h] = v;
  else if (isObj(v)) ({ width: w, height: h } = v);
  else if (typeof v === 'string') {
    const m = /^\s*(\d+)\s*[xX×]\s*(\d+)\s*$/.exec(v);
    if (m) [w, h] = [Number(m[1]), Number(m[2])];
  }
  const ok = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x > 0 && x <= 8192;
  if (!ok(w) || !ok(h))
    throw new SettingsError(key, `must be a size like [224, 224] or "224x224" (got ${JSON.stringify(v)})`);
  return { width: w, height: h };
}

export function parsePreprocessing(v: unknown): Preprocessing {
  const key = `${SECTION}.preprocessing`;
  if (v === undefined || v === null) return { preset: 'imagenet', channelOrder: 'rgb' };
  if (typeof v === 'string') v = { preset: v };
  if (!isObj(v)) throw new SettingsError(key, 'must be an object such as {"preset": "imagenet"}');
  const known = ['preset', 'mean', 'std', 'scale', 'size', 'channelOrder', 'resize', 'resizeTo', 'cropPct', 'interpolation'];
  for (const k of Object.keys(v))
    if (!known.includes(k)) throw new SettingsError(key, `unknown key '${k}' (known: ${known.join(', ')})`);
  const out: Preprocessing = { preset: 'imagenet', channelOrder: 'rgb' };
  if (v.preset !== undefined) {
    if (typeof v.preset !== 'string' || !(PRESETS as readonly string[]).includes(v.preset))
      throw new SettingsError(`${key}.preset`, `must be one of ${PRESETS.join(', ')} (got ${JSON.stringify(v.preset)})`);
    out.preset = v.preset as Preset;
  }
  if (v.mean !== undefined) out.mean = numberList(`${key}.mean`, v.mean, false);
  if (v.std !== undefined) out.std = numberList(`${key}.std`, v.std, true);
  if (v.scale !== undefined) {
    if (typeof v.scale !== 'number' || !Number.isFinite(v.scale) || v.scale <= 0)
      throw new SettingsError(`${key}.scale`, `must be a positive number (got ${JSON.stringify(v.scale)})`);
    out.scale = v.scale;
  }
  if (v.size !== undefined) out.size = parseSize(`${key}.size`, v.size);
  if (v.channelOrder !== undefined) {
    if (v.channelOrder !== 'rgb' && v.channelOrder !== 'bgr')
      throw new SettingsError(`${key}.channelOrder`, `must be "rgb" or "bgr" (got ${JSON.stringify(v.channelOrder)})`);
    out.channelOrder = v.channelOrder;
  }
  if (v.resize !== undefined) {
    if (typeof v.resize !== 'string' || !(RESIZE_MODES as readonly string[]).includes(v.resize))
      throw new SettingsError(`${key}.resize`, `must be one of ${RESIZE_MODES.join(', ')} (got ${JSON.stringify(v.resize)})`);
    out.resize = v.resize as ResizeMode;
  }
  if (v.interpolation !== undefined) {
    if (typeof v.interpolation !== 'string' || !(INTERPOLATIONS as readonly string[]).includes(v.interpolation))
      throw new SettingsError(`${key}.interpolation`, `must be one of ${INTERPOLATIONS.join(', ')} (got ${JSON.stringify(v.interpolation)})`);
    out.interpolation = v.interpolation as Interpolation;
  }
  if (v.cropPct !== undefined) {
    if (typeof v.cropPct !== 'number' || !(v.cropPct > 0 && v.cropPct <= 1))
      throw new SettingsError(`${key}.cropPct`, `must be a number in (0, 1], e.g. 0.875 (got ${JSON.stringify(v.cropPct)})`);
    out.cropPct = v.cropPct;
  }
  if (v.resizeTo !== undefined) {
    if (typeof v.resizeTo === 'number') {
      if (!Number.isInteger(v.resizeTo) || v.resizeTo < 1 || v.resizeTo > 8192)
        throw new SettingsError(`${key}.resizeTo`, `must be a whole number of pixels or a size like [256, 256] (got ${JSON.stringify(v.resizeTo)})`);
      out.resizeTo = v.resizeTo;
    } else {
      const s = parseSize(`${key}.resizeTo`, v.resizeTo);
      out.resizeTo = [s.width, s.height];
    }
  }
  return out;
}

export function parseRules(v: unknown): RulesConfig {
  const key = `${SECTION}.rules`;
  try {
    return parseRulesConfig(v ?? undefined, key);
  } catch (e) {
    if (e instanceof ConfigError) {
      // parseRulesConfig prefixes its messages with `where: `; keep the detail only.
      const detail = e.message.startsWith(`${key}: `) ? e.message.slice(key.length + 2) : e.message;
      throw new SettingsError(key, detail);
    }
    throw e;
  }
}

/** `lrpLens.compare`: an array of method names (LRP composites or methods beside LRP). */
export function parseCompare(v: unknown): CompareMethod[] {
  const key = `${SECTION}.compare`;
  if (v === undefined || v === null) return [...DEFAULT_COMPARE];
  if (!Array.isArray(v)) throw new SettingsError(key, `must be an array of method names such as ["epsilon-plus-flat", "gradcam"] (got ${JSON.stringify(v)})`);
  const out: CompareMethod[] = [];
  for (const m of v) {
    if (typeof m !== 'string' || !(COMPARE_METHODS as readonly string[]).includes(m.trim()))
      throw new SettingsError(key, `unknown method ${JSON.stringify(m)} (known: ${COMPARE_METHODS.join(', ')})`);
    const name = m.trim() as CompareMethod;
    if (!out.includes(name)) out.push(name);
  }
  if (out.length > MAX_COMPARE) throw new SettingsError(key, `at most ${MAX_COMPARE} methods (got ${out.length})`);
  return out;
}

/**
 * The compare grid's entries and, when the setting is invalid, the message naming it (the grid
 * then shows the default entries: a typo there must not stop the explanations).
 */
export function compareOrDefault(v: unknown): { methods: CompareMethod[]; error?: string } {
  try {
    return { methods: parseCompare(v) };
  } catch (e) {
    if (e instanceof SettingsError) return { methods: [...DEFAULT_COMPARE], error: e.message };
    throw e;
  }
}

export function parseSettings(raw: RawSettings): Settings {
  const backend = raw.backend ?? 'auto';
  if (typeof backend !== 'string' || !(BACKENDS as readonly string[]).includes(backend))
    throw new SettingsError(`${SECTION}.backend`, `must be one of ${BACKENDS.join(', ')} (got ${JSON.stringify(backend)})`);
  const colormap = raw.colormap ?? 'bwr';
  if (typeof colormap !== 'string' || !(COLORMAP_NAMES as readonly string[]).includes(colormap))
    throw new SettingsError(`${SECTION}.colormap`, `must be one of ${COLORMAP_NAMES.join(', ')} (got ${JSON.stringify(colormap)})`);
  return {
    modelPath: optString('modelPath', raw.modelPath),
    labelsPath: optString('labelsPath', raw.labelsPath),
    preprocessing: parsePreprocessing(raw.preprocessing),
    preprocessingFromSetting: raw.preprocessing !== undefined && raw.preprocessing !== null,
    rules: parseRules(raw.rules),
    backend: backend as Backend,
    colormap: colormap as ColormapName,
    heatmap: parseHeatmapSettings(raw),
  };
}

/** The panel's view options that settings decide (colormap, default view, scale, contrast). */
export function viewFromSettings(s: Settings): Pick<ViewOptions, 'colormap' | 'mode' | 'percentile' | 'gamma'> {
  return { colormap: s.colormap, mode: s.heatmap.view, percentile: s.heatmap.percentile, gamma: s.heatmap.gamma };
}

function parseHeatmapSettings(raw: RawSettings): HeatmapSettings {
  const view = raw.heatmapView ?? DEFAULT_VIEW.mode;
  if (typeof view !== 'string' || !(HEATMAP_VIEWS as readonly string[]).includes(view))
    throw new SettingsError(`${SECTION}.heatmap.view`, `must be one of ${HEATMAP_VIEWS.join(', ')} (got ${JSON.stringify(view)})`);
  const percentile = raw.heatmapPercentile ?? DEFAULT_VIEW.percentile;
  if (!isPercentile(percentile))
    throw new SettingsError(`${SECTION}.heatmap.percentile`, `must be a number from 50 to 100 (got ${JSON.stringify(percentile)})`);
  const gamma = raw.heatmapGamma ?? DEFAULT_VIEW.gamma;
  if (!isHeatmapGamma(gamma)) throw new SettingsError(`${SECTION}.heatmap.gamma`, `must be a number from 0.1 to 10 (got ${JSON.stringify(gamma)})`);
  return { view: view as HeatmapView, percentile, gamma };
}

/** Resolves a setting path: `~/` expands to the home folder, relative paths to the base folder. */
export function resolveSettingPath(p: string, baseDir: string | undefined, home: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return path.join(home, p.slice(2));
  if (path.isAbsolute(p)) return path.normalize(p);
  return path.resolve(baseDir ?? process.cwd(), p);
}

/** The rules the panel shows, taken from the effective config. */
export function ruleChoiceOf(rules: RulesConfig): RuleChoice {
  return { composite: rules.composite, epsilon: rules.epsilon, gamma: rules.gamma, attention: rules.attention };
}

/** Applies the panel's choice on top of the setting's config (overrides etc. are kept). */
export function applyRuleChoice(rules: RulesConfig, choice: Partial<RuleChoice> | undefined): RulesConfig {
  if (!choice) return rules;
  const out: RulesConfig = { ...rules, overrides: [...rules.overrides] };
  if (choice.composite !== undefined) {
    if (!(COMPOSITE_NAMES as readonly string[]).includes(choice.composite))
      throw new SettingsError(`${SECTION}.rules`, `unknown composite '${choice.composite}'`);
    out.composite = choice.composite;
  }
  if (choice.epsilon !== undefined) {
    if (!(choice.epsilon >= 0)) throw new SettingsError(`${SECTION}.rules`, 'epsilon must not be negative');
    out.epsilon = choice.epsilon;
  }
  if (choice.gamma !== undefined) {
    if (!(choice.gamma >= 0)) throw new SettingsError(`${SECTION}.rules`, 'gamma must not be negative');
    out.gamma = choice.gamma;
  }
  if (choice.attention !== undefined) {
    if (!(ATTENTION_MODES as readonly string[]).includes(choice.attention))
      throw new SettingsError(`${SECTION}.rules`, `unknown attention mode '${choice.attention}'`);
    out.attention = choice.attention;
  }
  return out;
}

/** Read beside the model when `lrpLens.preprocessing` is not set: the same object as the setting. */
export const PREPROCESSING_FILE_NAME = 'preprocessing.json';

/** A model's `preprocessing.json` (the setting's object); errors name the file and the key. */
export function parsePreprocessingFile(text: string, file: string): Preprocessing {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  try {
    return parsePreprocessing(v);
  } catch (e) {
    if (!(e instanceof SettingsError)) throw e;
    const key = e.setting.slice(`${SECTION}.preprocessing`.length).replace(/^\./, '');
    const detail = e.message.slice(`Setting '${e.setting}': `.length);
    throw new Error(`${file}: ${key ? `'${key}' ` : ''}${detail}`);
  }
}

/** File names looked for beside the model when `lrpLens.labelsPath` is not set, in order. */
export const LABEL_FILE_NAMES = ['labels.txt', 'classes.txt', 'imagenet_classes.txt', 'labels.json'];

export const IMAGE_EXTENSIONS = ['png', 'jpg', 'jpeg', 'webp', 'gif', 'tif', 'tiff', 'bmp'];

export function isImagePath(p: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(p).slice(1).toLowerCase());
}

/** A stable key for caching an explainer session. */
export function sessionKey(
  modelPath: string,
  backend: Backend,
  mtimeMs: number,
  size: number,
  inputSize?: { width: number; height: number },
): string {
  return JSON.stringify([modelPath, backend, mtimeMs, size, inputSize ? `${inputSize.width}x${inputSize.height}` : null]);
}
