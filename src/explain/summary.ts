// The summary of one explanation as JSON (the CLI's --out-json and the panel's export).
import { RulesConfig } from '../engine/config';
import { labelFor } from '../engine/io/labels';
import { Explanation, LayerRelevance } from '../engine/types';

export interface Prediction {
  index: number;
  label: string;
  score: number;
}

/** Softmax scores of the logits, best first, at most `k`. */
export function topPredictions(logits: ArrayLike<number>, labels: readonly string[] | undefined, k = 5): Prediction[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const exp = Array.from(logits, (v) => Math.exp(v - max));
  const total = exp.reduce((a, b) => a + b, 0);
  return exp
    .map((e, index) => ({ index, label: labelFor(labels, index), score: e / total }))
    .sort((a, b) => b.score - a.score)
    .slice(0, k);
}

/** One explained layer without its maps: what the JSON summary and the panel list. */
export function layerSummary(l: LayerRelevance) {
  return {
    name: l.name,
    opType: l.opType,
    rule: l.rule,
    outputShape: l.outputShape,
    relevanceSum: l.relevanceSum,
    positiveSum: l.positiveSum,
    negativeSum: l.negativeSum,
  };
}

export interface SummaryInput {
  model: string;
  backend: string;
  rules: RulesConfig;
  labels?: readonly string[];
  explanation: Explanation;
  timings: { loadMs?: number; forwardMs?: number; lrpMs: number };
  image?: string;
  /** Where the preprocessing and labels came from (setting, file name, default). */
  sources?: { preprocessing: string; labels: string; description: string };
}

export function explanationSummary(s: SummaryInput): Record<string, unknown> {
  const e = s.explanation;
  return {
    ...(s.image !== undefined ? { image: s.image } : {}),
    model: s.model,
    backend: s.backend,
    rules: s.rules,
    ...(s.sources
      ? { preprocessing: { source: s.sources.preprocessing, description: s.sources.description }, labels: { source: s.sources.labels } }
      : {}),
    target: e.target,
    label: labelFor(s.labels, e.target),
    logit: e.logit,
    top5: topPredictions(e.logits, s.labels),
    relevanceSum: e.relevanceSum,
    layers: e.layers.map(layerSummary),
    timings: s.timings,
  };
}
