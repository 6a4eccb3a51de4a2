// Resampling without dependencies (used by image preprocessing, heatmaps and Grad-CAM maps).

/** Bilinear resize of interleaved samples (pixel centres aligned, no anti-aliasing). */
export function resizeBilinear(
  src: ArrayLike<number>,
  w: number,
  h: number,
  channels: number,
  outW: number,
  outH: number,
): Float32Array {
  const out = new Float32Array(outW * outH * channels);
  const sx = w / outW;
  const sy = h / outH;
  for (let y = 0; y < outH; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), h - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, h - 1);
    const wy = fy - y0;
    for (let x = 0; x < outW; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), w - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, w - 1);
      const wx = fx - x0;
      for (let c = 0; c < channels; c++) {
        const a = src[(y0 * w + x0) * channels + c] * (1 - wx) + src[(y0 * w + x1) * channels + c] * wx;
        const b = src[(y1 * w + x0) * channels + c] * (1 - wx) + src[(y1 * w + x1) * channels + c] * wx;
        out[(y * outW + x) * channels + c] = a * (1 - wy) + b * wy;
      }
    }
  }
  return out;
}
