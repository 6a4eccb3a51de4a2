// Window geometry of Conv and pooling nodes, with auto_pad resolved to explicit pads, and the
// averaging geometry of ReduceMean.
import { Node, ModelError, attrInts, attrString } from './graph';

export interface WindowGeometry {
  kernel: number[]; // spatial kernel size
  strides: number[];
  dilations: number[];
  /** [begin_0, begin_1, ..., end_0, end_1, ...] as in ONNX. */
  pads: number[];
  /** Effective kernel extent (k - 1) * d + 1. */
  extent: number[];
  inSize: number[];
  outSize: number[];
}

/**
 * Geometry of a windowed node over input spatial size `inSize` and output size `outSize`
 * (both known from shape inference). `kernel` comes from the weights for Conv, from
 * `kernel_shape` for pools.
 */
export function windowGeometry(n: Node, kernel: number[], inSize: number[], outSize: number[]): WindowGeometry {
  const r = kernel.length;
  const strides = attrInts(n, 'strides', undefined) ?? new Array<number>(r).fill(1);
  const dilations = attrInts(n, 'dilations', undefined) ?? new Array<number>(r).fill(1);
  const extent = kernel.map((k, i) => (k - 1) * dilations[i] + 1);
  const autoPad = attrString(n, 'auto_pad', 'NOTSET');
  let pads = attrInts(n, 'pads', undefined) ?? new Array<number>(2 * r).fill(0);
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = new Array<number>(2 * r).fill(0);
    for (let i = 0; i < r; i++) {
      const total = Math.max(0, (outSize[i] - 1) * strides[i] + extent[i] - inSize[i]);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[i + r] = total - pads[i];
    }
  } else if (autoPad === 'VALID') {
    pads = new Array<number>(2 * r).fill(0);
  } else if (autoPad !== 'NOTSET') {
    throw new ModelError(`node '${n.name}' (${n.opType}): unknown auto_pad '${autoPad}'`);
  }
  if (strides.length !== r || dilations.length !== r || pads.length !== 2 * r)
    throw new ModelError(`node '${n.name}' (${n.opType}): strides/dilations/pads do not match the kernel rank ${r}`);
  return { kernel, strides, dilations, pads, extent, inSize, outSize };
}

/**
 * Pads and output_padding for a ConvTranspose that maps the node's output size back exactly
 * onto its input size (for the gradient / transposed pass). Where the forward windows overhang
 * the end (ceil_mode), the extra rows are cropped through larger end pads.
 */
export function transposedPads(geo: WindowGeometry): { pads: number[]; outputPadding: number[] } {
  const r = geo.kernel.length;
  const pads = [...geo.pads];
  const outputPadding = new Array<number>(r).fill(0);
  for (let i = 0; i < r; i++) {
    const base = (geo.outSize[i] - 1) * geo.strides[i] + geo.extent[i] - geo.pads[i] - geo.pads[i + r];
    const diff = geo.inSize[i] - base;
    if (diff >= 0) outputPadding[i] = diff;
    else pads[i + r] = geo.pads[i + r] - diff;
  }
  return { pads, outputPadding };
}

/** Pads that turn a stride-1 transposed convolution into an ordinary Conv with a flipped kernel. */
export function flippedConvPads(geo: WindowGeometry): number[] | null {
  if (geo.strides.some((s) => s !== 1)) return null;
  const r = geo.kernel.length;
  const pads = new Array<number>(2 * r);
  for (let i = 0; i < r; i++) {
    pads[i] = geo.extent[i] - 1 - geo.pads[i];
    pads[i + r] = geo.extent[i] - 1 - geo.pads[i + r];
  }
  return pads.every((p) => p >= 0) ? pads : null;
}

/**
 * A ReduceMean over `inDims`: how many elements each mean averages, and the input shape with the
 * reduced axes kept as 1 (the shape its relevance or gradient is reshaped to before expanding).
 */
export function reduceMeanGeometry(n: Node, inDims: number[]): { count: number; keptDims: number[] } {
  const rank = inDims.length;
  const axes = (attrInts(n, 'axes', undefined) ?? inDims.map((_, i) => i)).map((a) => (a < 0 ? a + rank : a));
  return {
    count: axes.reduce((acc, a) => acc * inDims[a], 1),
    keptDims: inDims.map((d, i) => (axes.includes(i) ? 1 : d)),
  };
}
