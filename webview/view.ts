// Small pure helpers of the panel view (unit-tested in Node).

/**
 * Geometry of a relevance-sum bar in percent of the bar's width. With `diverging` the zero line
 * sits in the middle (negative to the left); otherwise at the left edge.
 */
export function flowBar(value: number, scale: number, diverging = false): { leftPct: number; widthPct: number; negative: boolean } {
  const v = Number.isFinite(value) ? value : 0;
  const frac = scale > 0 ? Math.min(1, Math.abs(v) / scale) : 0;
  const negative = v < 0;
  if (diverging) {
    const w = 50 * frac;
    return { leftPct: negative ? 50 - w : 50, widthPct: w, negative };
  }
  return { leftPct: 0, widthPct: 100 * frac, negative };
}

/** Parses an epsilon/gamma field: a finite number >= 0. */
export function ruleFieldState(text: string, name: string): { value?: number; error?: string } {
  const t = text.trim();
  if (t === '') return { error: `${name} must not be empty` };
  const v = Number(t);
  if (!Number.isFinite(v)) return { error: `${name} must be a number (got "${t}")` };
  if (v < 0) return { error: `${name} must not be negative` };
  return { value: v };
}
