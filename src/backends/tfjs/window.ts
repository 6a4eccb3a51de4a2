// The sliding-window geometry shared by convolutions and pools: ONNX strides, dilations, pads and
// auto_pad as 2D NHWC values (a 1D window is a 2D one of height 1).
import * as tf from '@tensorflow/tfjs';
import { type DType, attrInts, attrString } from '../../engine/graph/graph';
import { type Ctx, type Val, TO_NCHW, TO_NHWC, dims, fail, physNhwc, val } from './value';

export interface Geo2 {
  k: [number, number];
  s: [number, number];
  d: [number, number];
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
}

export function geometry(c: Ctx, inHW: number[], kernel: number[]): Geo2 {
  const n = c.node;
  const nd = kernel.length;
  const s = attrInts(n, 'strides', undefined) ?? new Array<number>(nd).fill(1);
  const d = attrInts(n, 'dilations', undefined) ?? new Array<number>(nd).fill(1);
  let pads = attrInts(n, 'pads', undefined) ?? new Array<number>(2 * nd).fill(0);
  const autoPad = attrString(n, 'auto_pad', 'NOTSET');
  if (autoPad === 'VALID') pads = new Array<number>(2 * nd).fill(0);
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = new Array<number>(2 * nd).fill(0);
    for (let i = 0; i < nd; i++) {
      const out = Math.ceil(inHW[i] / s[i]);
      const total = Math.max(0, (out - 1) * s[i] + (kernel[i] - 1) * d[i] + 1 - inHW[i]);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[i + nd] = total - pads[i];
    }
  }
  if (nd === 1) return { k: [1, kernel[0]], s: [1, s[0]], d: [1, d[0]], pads: [0, pads[0], 0, pads[1]] };
  if (nd !== 2) fail(c, `${nd}-D windows are not supported by the tfjs backend`);
  return { k: [kernel[0], kernel[1]], s: [s[0], s[1]], d: [d[0], d[1]], pads: [pads[0], pads[1], pads[2], pads[3]] };
}

/** Physical NHWC 4D view of an NCHW (or NCW) input; `squeeze1d` tells to drop H afterwards. */
export function spatialInput(c: Ctx, v: Val): { x: tf.Tensor4D; oneD: boolean } {
  const r = v.t.rank;
  if (r === 4) return { x: physNhwc(v), oneD: false };
  if (r === 3) {
    const d = dims(v.t);
    const t = tf.reshape(v.t, [d[0], d[1], 1, d[2]]);
    return { x: tf.transpose(t, TO_NHWC) as tf.Tensor4D, oneD: true };
  }
  return fail(c, `expects a 3D or 4D input, got rank ${r}`);
}

export function spatialOutput(y: tf.Tensor4D, oneD: boolean, dtype: DType = 'float32'): Val {
  if (!oneD) return val(y, dtype, true);
  const t = tf.transpose(y, TO_NCHW);
  return val(tf.reshape(t, [t.shape[0], t.shape[1], t.shape[3]]), dtype);
}
