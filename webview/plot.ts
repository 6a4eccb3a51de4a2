// Pure helpers of the compare view (no DOM): the shared normalisation and the curves plot's
// geometry. Unit-tested in Node.

/** Largest max |v| over several maps' own maxima (0 when there are none). */
export function sharedScale(maxima: readonly number[]): number {
  let m = 0;
  for (const v of maxima) if (Number.isFinite(v) && v > m) m = v;
  return m;
}

export interface PlotBox {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

export interface PlotGeometry {
  /** One SVG path `d` per curve ('' for a missing or empty curve). */
  paths: string[];
  xMax: number;
  yMin: number;
  yMax: number;
  /** Tick values and their positions. */
  xTicks: { value: number; pos: number }[];
  yTicks: { value: number; pos: number }[];
}

/** "Nice" tick values covering [lo, hi] (about `count` of them). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** Lines of the curves (x = step index, y = value) in the plot box; y grows upwards. */
export function curvePaths(curves: readonly (readonly number[] | undefined)[], box: PlotBox): PlotGeometry {
  let xMax = 1;
  let yMin = Infinity;
  let yMax = -Infinity;
  for (const c of curves) {
    if (!c?.length) continue;
    xMax = Math.max(xMax, c.length - 1);
    for (const v of c)
      if (Number.isFinite(v)) {
        yMin = Math.min(yMin, v);
        yMax = Math.max(yMax, v);
      }
  }
  if (!Number.isFinite(yMin)) {
    yMin = 0;
    yMax = 1;
  }
  if (yMax - yMin < 1e-9) {
    yMin -= 0.5;
    yMax += 0.5;
  }
  const pad = (yMax - yMin) * 0.05;
  yMin -= pad;
  yMax += pad;
  const w = box.width - box.left - box.right;
  const h = box.height - box.top - box.bottom;
  const X = (i: number): number => box.left + (i / xMax) * w;
  const Y = (v: number): number => box.top + (1 - (v - yMin) / (yMax - yMin)) * h;
  const paths = curves.map((c) => {
    if (!c?.length) return '';
    const parts: string[] = [];
    c.forEach((v, i) => {
      if (!Number.isFinite(v)) return;
      parts.push(`${parts.length ? 'L' : 'M'}${X(i).toFixed(1)},${Y(v).toFixed(1)}`);
    });
    return parts.join(' ');
  });
  return {
    paths,
    xMax,
    yMin,
    yMax,
    xTicks: niceTicks(0, xMax, 5).map((value) => ({ value, pos: X(value) })),
    yTicks: niceTicks(yMin, yMax, 4).map((value) => ({ value, pos: Y(value) })),
  };
}
