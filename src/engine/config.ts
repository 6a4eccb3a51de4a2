// The rule configuration (spec section 4): the `lrpLens.rules` setting and the CLI's --rules JSON.

export const RULE_NAMES = [
  'epsilon',
  'z',
  'zplus',
  'alpha-beta',
  'gamma',
  'zbox',
  'flat',
  'wsquare',
  'pass',
] as const;
export type RuleName = (typeof RULE_NAMES)[number];

export const COMPOSITE_NAMES = [
  'epsilon',
  'alpha1-beta0',
  'gamma',
  'epsilon-plus',
  'epsilon-plus-flat',
  'epsilon-gamma-box',
  'epsilon-alpha2-beta1',
  'epsilon-alpha2-beta1-flat',
] as const;
export type CompositeName = (typeof COMPOSITE_NAMES)[number];

/** The methods compared side by side by default (the panel's grid; `evaluate` adds the random baseline). */
export const DEFAULT_COMPARE_METHODS = [
  'epsilon',
  'epsilon-plus-flat',
  'epsilon-gamma-box',
  'alpha1-beta0',
  'epsilon-alpha2-beta1-flat',
  'gradcam',
  'gradient-input',
] as const;

/** Parameters a rule may take; unset ones come from the top-level config, then the spec defaults. */
export interface RuleParams {
  epsilon?: number;
  gamma?: number;
  alpha?: number;
  beta?: number;
  stabilizer?: number;
  zeroBias?: boolean;
  low?: number[];
  high?: number[];
}

export interface Override extends RuleParams {
  layer?: string; // exact node name or /regex/
  opType?: string;
  rule: RuleName;
}

/** How attention is explained (spec section 7): CP-LRP (softmax output constant) or AttnLRP. */
export const ATTENTION_MODES = ['cp', 'attnlrp'] as const;
export type AttentionMode = (typeof ATTENTION_MODES)[number];

/**
 * A BatchNormalization that cannot be folded into a linear node (spec section 3): `pass` (the
 * spec) hands its output's relevance to its input unchanged; `affine` treats it as what it is, a
 * per-channel product (passed by its Jacobian) plus a constant shift that absorbs its share like
 * a bias, R_x = x*s / (x*s + t) * R. That is what Zennit and Captum do with a BatchNorm that has
 * no rule (gradient times input), and it keeps relevance bounded through DenseNet's
 * Concat-BatchNorm-Relu-Conv layers.
 */
export const BATCH_NORM_MODES = ['pass', 'affine'] as const;
export type BatchNormMode = (typeof BATCH_NORM_MODES)[number];

export interface RulesConfig {
  composite: CompositeName;
  epsilon: number;
  gamma: number;
  stabilizer: number;
  zeroBias: boolean;
  init: 'logit' | 'one-hot';
  inputBounds?: { low: number[]; high: number[] };
  overrides: Override[];
  /** `cp` (default): a Softmax inside the network is a constant; `attnlrp`: AttnLRP's rules. */
  attention: AttentionMode;
  /** An unfolded BatchNormalization: `pass` (default, spec section 3) or `affine`. */
  batchNorm: BatchNormMode;
}

export const DEFAULT_RULES: RulesConfig = {
  composite: 'epsilon-plus-flat',
  epsilon: 1e-6,
  gamma: 0.25,
  stabilizer: 1e-6,
  zeroBias: false,
  init: 'logit',
  overrides: [],
  attention: 'cp',
  batchNorm: 'pass',
};

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(where: string, key: string, v: unknown, min = -Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(`${where}: '${key}' must be a finite number`);
  if (v < min) throw new ConfigError(`${where}: '${key}' must not be negative (got ${v})`);
  return v;
}

function numArray(where: string, key: string, v: unknown): number[] {
  if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'number' || !Number.isFinite(x)))
    throw new ConfigError(`${where}: '${key}' must be a non-empty array of numbers`);
  return v as number[];
}

function parseParams(where: string, o: Record<string, unknown>): RuleParams {
  const p: RuleParams = {};
  if (o.epsilon !== undefined) p.epsilon = num(where, 'epsilon', o.epsilon, 0);
  if (o.gamma !== undefined) p.gamma = num(where, 'gamma', o.gamma, 0);
  if (o.stabilizer !== undefined) p.stabilizer = num(where, 'stabilizer', o.stabilizer, 0);
  if (o.alpha !== undefined) p.alpha = num(where, 'alpha', o.alpha, 0);
  if (o.beta !== undefined) p.beta = num(where, 'beta', o.beta, 0);
  if (o.zeroBias !== undefined) {
    if (typeof o.zeroBias !== 'boolean') throw new ConfigError(`${where}: 'zeroBias' must be true or false`);
    p.zeroBias = o.zeroBias;
  }
  if (o.low !== undefined) p.low = numArray(where, 'low', o.low);
  if (o.high !== undefined) p.high = numArray(where, 'high', o.high);
  // one of alpha/beta alone implies the other (alpha - beta = 1); both must differ by exactly 1
  if (p.alpha !== undefined && p.beta !== undefined && Math.abs(p.alpha - p.beta - 1) > 1e-9)
    throw new ConfigError(`${where}: alpha-beta needs alpha - beta = 1 (got alpha ${p.alpha}, beta ${p.beta})`);
  if (p.alpha !== undefined && p.beta === undefined && p.alpha < 1)
    throw new ConfigError(`${where}: alpha-beta needs alpha >= 1 (got alpha ${p.alpha})`);
  return p;
}

const TOP_KEYS = new Set([
  'composite',
  'epsilon',
  'gamma',
  'stabilizer',
  'zeroBias',
  'init',
  'inputBounds',
  'overrides',
  'attention',
  'batchNorm',
]);

/**
 * Validate a rules config object (parsed JSON) and fill in the spec defaults.
 * `where` names the source in messages (a file path or a setting name).
 */
export function parseRulesConfig(raw: unknown, where = 'rules'): RulesConfig {
  if (raw === undefined || raw === null) return { ...DEFAULT_RULES, overrides: [] };
  if (!isObj(raw)) throw new ConfigError(`${where}: the rules config must be a JSON object`);
  for (const k of Object.keys(raw))
    if (!TOP_KEYS.has(k)) throw new ConfigError(`${where}: unknown key '${k}'`);
  const cfg: RulesConfig = { ...DEFAULT_RULES, overrides: [] };
  if (raw.composite !== undefined) {
    if (typeof raw.composite !== 'string' || !(COMPOSITE_NAMES as readonly string[]).includes(raw.composite))
      throw new ConfigError(
        `${where}: unknown composite '${String(raw.composite)}' (known: ${COMPOSITE_NAMES.join(', ')})`,
      );
    cfg.composite = raw.composite as CompositeName;
  }
  const p = parseParams(where, raw);
  if (p.epsilon !== undefined) cfg.epsilon = p.epsilon;
  if (p.gamma !== undefined) cfg.gamma = p.gamma;
  if (p.stabilizer !== undefined) cfg.stabilizer = p.stabilizer;
  if (p.zeroBias !== undefined) cfg.zeroBias = p.zeroBias;
  if (raw.init !== undefined) {
    if (raw.init !== 'logit' && raw.init !== 'one-hot')
      throw new ConfigError(`${where}: 'init' must be "logit" or "one-hot" (got ${JSON.stringify(raw.init)})`);
    cfg.init = raw.init;
  }
  if (raw.attention !== undefined) {
    if (typeof raw.attention !== 'string' || !(ATTENTION_MODES as readonly string[]).includes(raw.attention))
      throw new ConfigError(
        `${where}: 'attention' must be one of ${ATTENTION_MODES.map((m) => `"${m}"`).join(', ')} (got ${JSON.stringify(raw.attention)})`,
      );
    cfg.attention = raw.attention as AttentionMode;
  }
  if (raw.batchNorm !== undefined) {
    if (typeof raw.batchNorm !== 'string' || !(BATCH_NORM_MODES as readonly string[]).includes(raw.batchNorm))
      throw new ConfigError(
        `${where}: 'batchNorm' must be one of ${BATCH_NORM_MODES.map((m) => `"${m}"`).join(', ')} (got ${JSON.stringify(raw.batchNorm)})`,
      );
    cfg.batchNorm = raw.batchNorm as BatchNormMode;
  }
  if (raw.inputBounds !== undefined) {
    if (!isObj(raw.inputBounds)) throw new ConfigError(`${where}: 'inputBounds' must be an object {low, high}`);
    const low = numArray(where, 'inputBounds.low', raw.inputBounds.low);
    const high = numArray(where, 'inputBounds.high', raw.inputBounds.high);
    if (low.length !== high.length)
      throw new ConfigError(`${where}: 'inputBounds.low' and 'inputBounds.high' differ in length`);
    if (low.some((l, i) => l > high[i])) throw new ConfigError(`${where}: 'inputBounds.low' exceeds 'high'`);
    cfg.inputBounds = { low, high };
  }
  if (raw.overrides !== undefined) {
    if (!Array.isArray(raw.overrides)) throw new ConfigError(`${where}: 'overrides' must be an array`);
    raw.overrides.forEach((o, i) => {
      const w = `${where}: overrides[${i}]`;
      if (!isObj(o)) throw new ConfigError(`${w} must be an object`);
      if (typeof o.rule !== 'string' || !(RULE_NAMES as readonly string[]).includes(o.rule))
        throw new ConfigError(`${w}: unknown rule '${String(o.rule)}' (known: ${RULE_NAMES.join(', ')})`);
      if (o.layer === undefined && o.opType === undefined)
        throw new ConfigError(`${w}: needs 'layer' and/or 'opType' to match`);
      if (o.layer !== undefined && typeof o.layer !== 'string') throw new ConfigError(`${w}: 'layer' must be a string`);
      if (o.opType !== undefined && typeof o.opType !== 'string')
        throw new ConfigError(`${w}: 'opType' must be a string`);
      if (typeof o.layer === 'string' && isRegexPattern(o.layer)) {
        try {
          new RegExp(o.layer.slice(1, -1));
        } catch (e) {
          throw new ConfigError(`${w}: invalid regular expression ${o.layer}: ${(e as Error).message}`);
        }
      }
      for (const k of Object.keys(o))
        if (!['layer', 'opType', 'rule', 'epsilon', 'gamma', 'alpha', 'beta', 'stabilizer', 'zeroBias', 'low', 'high'].includes(k))
          throw new ConfigError(`${w}: unknown key '${k}'`);
      cfg.overrides.push({
        ...parseParams(w, o),
        rule: o.rule as RuleName,
        ...(o.layer !== undefined ? { layer: o.layer as string } : {}),
        ...(o.opType !== undefined ? { opType: o.opType as string } : {}),
      });
    });
  }
  return cfg;
}

export function isRegexPattern(s: string): boolean {
  return s.length >= 2 && s.startsWith('/') && s.endsWith('/');
}
