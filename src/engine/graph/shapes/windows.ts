// Shape rules of sliding windows: convolutions (and transposed ones) and pools, with ONNX strides,
// dilations, pads, auto_pad and ceil mode.
import { attrString } from '../graph';
import { NodeCtx, ShapeFn } from './context';

interface Window {
  kernel: number[];
  strides: number[];
  dilations: number[];
  pads: number[];
}

function windowOf(c: NodeCtx, spatial: number[], kernel: number[]): Window {
  const r = spatial.length;
  const strides = c.ints('strides') ?? new Array<number>(r).fill(1);
  const dilations = c.ints('dilations') ?? new Array<number>(r).fill(1);
  const autoPad = attrString(c.node, 'auto_pad', 'NOTSET');
  let pads = c.ints('pads') ?? new Array<number>(2 * r).fill(0);
  if (autoPad === 'VALID') pads = new Array<number>(2 * r).fill(0);
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = new Array<number>(2 * r).fill(0);
    for (let i = 0; i < r; i++) {
      const out = Math.ceil(spatial[i] / strides[i]);
      const total = Math.max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - spatial[i]);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[i + r] = total - pads[i];
    }
  } else if (autoPad !== 'NOTSET') throw c.err(`auto_pad '${autoPad}' is not supported`);
  return { kernel, strides, dilations, pads };
}

/** Output spatial size of a sliding window; ceil mode drops a last window starting in the end padding. */
function windowOut(w: Window, spatial: number[], ceil: boolean): number[] {
  const r = spatial.length;
  return spatial.map((d, i) => {
    const span = d + w.pads[i] + w.pads[i + r] - ((w.kernel[i] - 1) * w.dilations[i] + 1);
    let o = (ceil ? Math.ceil(span / w.strides[i]) : Math.floor(span / w.strides[i])) + 1;
    if (ceil && (o - 1) * w.strides[i] >= d + w.pads[i]) o--;
    return o;
  });
}

const conv: ShapeFn = (c) => {
  const x = c.in(0);
  const w = c.in(1);
  const spatial = x.dims.slice(2);
  const kernel = c.ints('kernel_shape') ?? w.dims.slice(2);
  const group = c.int('group', 1);
  if (x.dims[1] !== w.dims[1] * group)
    throw c.err(`input has ${x.dims[1]} channels but the weight expects ${w.dims[1] * group} (group ${group})`);
  const out = windowOut(windowOf(c, spatial, kernel), spatial, false);
  if (out.some((d) => d <= 0)) throw c.err(`output would be empty: [${out}]`);
  return [{ dtype: x.dtype, dims: [x.dims[0], w.dims[0], ...out] }];
};

const convTranspose: ShapeFn = (c) => {
  const x = c.in(0);
  const w = c.in(1);
  const spatial = x.dims.slice(2);
  const r = spatial.length;
  const channels = w.dims[1] * c.int('group', 1);
  const given = c.ints('output_shape');
  if (given) return [{ dtype: x.dtype, dims: [x.dims[0], channels, ...given.slice(given.length - r)] }];
  const kernel = c.ints('kernel_shape') ?? w.dims.slice(2);
  const strides = c.ints('strides') ?? new Array<number>(r).fill(1);
  const dil = c.ints('dilations') ?? new Array<number>(r).fill(1);
  const outPad = c.ints('output_padding') ?? new Array<number>(r).fill(0);
  const autoPad = attrString(c.node, 'auto_pad', 'NOTSET');
  const pads = autoPad === 'NOTSET' ? (c.ints('pads') ?? new Array<number>(2 * r).fill(0)) : new Array<number>(2 * r).fill(0);
  const out = spatial.map((d, i) =>
    autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER'
      ? d * strides[i]
      : strides[i] * (d - 1) + outPad[i] + (kernel[i] - 1) * dil[i] + 1 - pads[i] - pads[i + r],
  );
  return [{ dtype: x.dtype, dims: [x.dims[0], channels, ...out] }];
};

const pool: ShapeFn = (c) => {
  const x = c.in(0);
  const spatial = x.dims.slice(2);
  const kernel = c.ints('kernel_shape');
  if (!kernel) throw c.err('kernel_shape is required');
  const out = windowOut(windowOf(c, spatial, kernel), spatial, c.int('ceil_mode', 0) === 1);
  const dims = [x.dims[0], x.dims[1], ...out];
  return [{ dtype: x.dtype, dims }, { dtype: 'int64', dims: [...dims] }];
};

const globalPool: ShapeFn = (c) => {
  const x = c.in(0);
  return [{ dtype: x.dtype, dims: [x.dims[0], x.dims[1], ...x.dims.slice(2).map(() => 1)] }];
};

/** Convolutions and pools. */
export const WINDOW_SHAPES: Record<string, ShapeFn> = {
  Conv: conv,
  ConvTranspose: convTranspose,
  MaxPool: pool,
  AveragePool: pool,
  LpPool: pool,
  GlobalAveragePool: globalPool,
  GlobalMaxPool: globalPool,
};
