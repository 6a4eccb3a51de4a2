// LRP rules for linear nodes as declarations (spec section 2), and composites as layer maps
// (spec section 4). A rule is a list of groups; each group has its own denominator
//   D = sum over terms of f_{w'}(x') + b'
// and hands back  coef * sum over terms of x' * f_{w'}^T(mask * R / stab(D)).
// New rules are new declarations here, not new code paths in the compiler.
import { CompositeName, ConfigError, Override, RuleName, RulesConfig, isRegexPattern } from '../config';

/** What a term feeds into the modified forward pass in place of the node's input x. */
export type InputMod = 'x' | 'pos' | 'neg' | 'ones' | 'low' | 'high';

export type Modifier = (v: number) => number;

export const IDENTITY: Modifier = (v) => v;

export interface Term {
  input: InputMod;
  weight: Modifier;
}

export interface Group {
  coef: number;
  /** Only outputs whose unmodified z has this sign take part (gamma's two branches). */
  mask?: 'pos' | 'neg';
  terms: Term[];
  /** Modified bias in the denominator; null for none. */
  bias: Modifier | null;
  /** Stabiliser of the denominator; its sign is the denominator's own (as the reference computes). */
  eps: number;
  /** The denominator's sign when it is fixed by construction (then stabilising is one Add). */
  sign?: 'pos' | 'neg';
}

export interface ResolvedParams {
  epsilon: number;
  gamma: number;
  alpha: number;
  beta: number;
  stabilizer: number;
  zeroBias: boolean;
  low?: number[];
  high?: number[];
}

const pos: Modifier = (v) => (v > 0 ? v : 0);
const neg: Modifier = (v) => (v < 0 ? v : 0);
const one: Modifier = () => 1;

type RuleFactory = (p: ResolvedParams) => Group[];

export const RULES: Record<Exclude<RuleName, 'pass' | 'z'>, RuleFactory> = {
  epsilon: (p) => [{ coef: 1, terms: [{ input: 'x', weight: IDENTITY }], bias: IDENTITY, eps: p.epsilon }],
  zplus: (p) => [
    {
      coef: 1,
      terms: [
        { input: 'pos', weight: pos },
        { input: 'neg', weight: neg },
      ],
      bias: pos,
      eps: p.stabilizer,
      sign: 'pos',
    },
  ],
  'alpha-beta': (p) => [
    {
      coef: p.alpha,
      terms: [
        { input: 'pos', weight: pos },
        { input: 'neg', weight: neg },
      ],
      bias: pos,
      eps: p.stabilizer,
      sign: 'pos',
    },
    {
      coef: -p.beta,
      terms: [
        { input: 'pos', weight: neg },
        { input: 'neg', weight: pos },
      ],
      bias: neg,
      eps: p.stabilizer,
      sign: 'neg',
    },
  ],
  gamma: (p) => {
    const u: Modifier = (w) => w + p.gamma * pos(w);
    const v: Modifier = (w) => w + p.gamma * neg(w);
    return [
      {
        coef: 1,
        mask: 'pos',
        terms: [
          { input: 'pos', weight: u },
          { input: 'neg', weight: v },
        ],
        bias: (b) => b + p.gamma * pos(b),
        eps: p.stabilizer,
      },
      {
        coef: 1,
        mask: 'neg',
        terms: [
          { input: 'pos', weight: v },
          { input: 'neg', weight: u },
        ],
        bias: (b) => b + p.gamma * neg(b),
        eps: p.stabilizer,
      },
    ];
  },
  zbox: (p) => [
    {
      coef: 1,
      terms: [
        { input: 'x', weight: IDENTITY },
        { input: 'low', weight: (w) => -pos(w) },
        { input: 'high', weight: (w) => -neg(w) },
      ],
      bias: null,
      eps: p.stabilizer,
    },
  ],
  flat: (p) => [{ coef: 1, terms: [{ input: 'ones', weight: one }], bias: null, eps: p.stabilizer, sign: 'pos' }],
  wsquare: (p) => [
    { coef: 1, terms: [{ input: 'ones', weight: (w) => w * w }], bias: (b) => b * b, eps: p.stabilizer, sign: 'pos' },
  ],
};

/** The groups of a rule with the given parameters, biases dropped under zeroBias. */
export function ruleGroups(rule: Exclude<RuleName, 'pass'>, p: ResolvedParams): Group[] {
  const factory = RULES[rule === 'z' ? 'epsilon' : rule];
  const params = rule === 'z' ? { ...p, epsilon: 0 } : p;
  return factory(params)
    .filter((g) => g.coef !== 0)
    .map((g) => (p.zeroBias ? { ...g, bias: null } : g));
}

// ---------------- composites ----------------

interface RuleSpec {
  rule: RuleName;
  alpha?: number;
  beta?: number;
}

interface CompositeDecl {
  /** Rule of the first linear node(s); `convOnly`: only when that node is a Conv. */
  first?: RuleSpec & { convOnly?: boolean };
  conv: RuleSpec;
  dense: RuleSpec;
}

const AB10: RuleSpec = { rule: 'alpha-beta', alpha: 1, beta: 0 };
const AB21: RuleSpec = { rule: 'alpha-beta', alpha: 2, beta: 1 };
const EPS: RuleSpec = { rule: 'epsilon' };

export const COMPOSITES: Record<CompositeName, CompositeDecl> = {
  epsilon: { conv: EPS, dense: EPS },
  'alpha1-beta0': { conv: AB10, dense: AB10 },
  gamma: { conv: { rule: 'gamma' }, dense: { rule: 'gamma' } },
  'epsilon-plus': { conv: { rule: 'zplus' }, dense: EPS },
  'epsilon-plus-flat': { first: { rule: 'flat' }, conv: { rule: 'zplus' }, dense: EPS },
  'epsilon-gamma-box': { first: { rule: 'zbox', convOnly: true }, conv: { rule: 'gamma' }, dense: EPS },
  'epsilon-alpha2-beta1': { conv: AB21, dense: EPS },
  'epsilon-alpha2-beta1-flat': { first: { rule: 'flat' }, conv: AB21, dense: EPS },
};

export interface LinearNodeInfo {
  name: string;
  opType: string; // the node's own op type (Conv, Gemm, MatMul)
  kind: 'Conv' | 'Gemm'; // ONNX op name used for matching (Dense/MatMul-with-constant are 'Gemm')
  isFirst: boolean;
}

export interface Assignment {
  rule: RuleName;
  params: ResolvedParams;
  /** For display, e.g. 'alpha-beta(2,1)', 'epsilon(0.25)'. */
  label: string;
}

function matches(o: Override, n: LinearNodeInfo): boolean {
  if (o.layer !== undefined) {
    const ok = isRegexPattern(o.layer) ? new RegExp(o.layer.slice(1, -1)).test(n.name) : o.layer === n.name;
    if (!ok) return false;
  }
  if (o.opType !== undefined && o.opType !== n.kind && o.opType !== n.opType) return false;
  return true;
}

const fmt = (v: number): string => (v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential() : String(v));

function label(rule: RuleName, p: ResolvedParams): string {
  switch (rule) {
    case 'epsilon':
      return `epsilon(${fmt(p.epsilon)})`;
    case 'alpha-beta':
      return `alpha-beta(${p.alpha},${p.beta})`;
    case 'gamma':
      return `gamma(${fmt(p.gamma)})`;
    default:
      return rule;
  }
}

/** Decide the rule of one linear node: overrides first (in order), then the composite. */
export function assignRule(n: LinearNodeInfo, cfg: RulesConfig): Assignment {
  const base: ResolvedParams = {
    epsilon: cfg.epsilon,
    gamma: cfg.gamma,
    alpha: 2,
    beta: 1,
    stabilizer: cfg.stabilizer,
    zeroBias: cfg.zeroBias,
    low: cfg.inputBounds?.low,
    high: cfg.inputBounds?.high,
  };
  const o = cfg.overrides.find((ov) => matches(ov, n));
  let spec: RuleSpec;
  let params = base;
  if (o) {
    spec = { rule: o.rule };
    params = {
      ...base,
      ...(o.epsilon !== undefined ? { epsilon: o.epsilon } : {}),
      ...(o.gamma !== undefined ? { gamma: o.gamma } : {}),
      ...(o.alpha !== undefined ? { alpha: o.alpha } : {}),
      ...(o.beta !== undefined ? { beta: o.beta } : {}),
      ...(o.stabilizer !== undefined ? { stabilizer: o.stabilizer } : {}),
      ...(o.zeroBias !== undefined ? { zeroBias: o.zeroBias } : {}),
      ...(o.low !== undefined ? { low: o.low } : {}),
      ...(o.high !== undefined ? { high: o.high } : {}),
    };
    if (o.rule === 'alpha-beta' && o.alpha !== undefined && o.beta === undefined) params.beta = o.alpha - 1;
    if (o.rule === 'alpha-beta' && o.beta !== undefined && o.alpha === undefined) params.alpha = o.beta + 1;
  } else {
    const c = COMPOSITES[cfg.composite];
    const useFirst = n.isFirst && c.first && (!c.first.convOnly || n.kind === 'Conv');
    spec = useFirst && c.first ? c.first : n.kind === 'Conv' ? c.conv : c.dense;
    if (spec.alpha !== undefined) params = { ...base, alpha: spec.alpha, beta: spec.beta ?? spec.alpha - 1 };
  }
  if (spec.rule === 'alpha-beta' && Math.abs(params.alpha - params.beta - 1) > 1e-9)
    throw new ConfigError(`alpha-beta on '${n.name}' needs alpha - beta = 1 (got ${params.alpha}, ${params.beta})`);
  if (spec.rule === 'z') params = { ...params, epsilon: 0 };
  return { rule: spec.rule, params, label: label(spec.rule, params) };
}
