// Putting a map computed at the model input's resolution back on the full photo when the input
// was a crop (or a padded fit) of it: the map covers the region the model saw, the rest of the
// photo is dimmed. Pure (no Node or DOM imports): the CLI's heatmap and the panel share it.
import { sampleBilinear } from './render';

/** The part of the photo the model input covers, in original photo pixels (see preprocess.ts). */
export interface Region {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface PlainMap {
  width: number;
  height: number;
  data: ArrayLike<number>;
}

/** How much of the photo's brightness is kept outside the region. */
export const DIM_OUTSIDE = 0.4;

/**
 * The model-input coordinates (continuous, pixel centres at integers) of the photo point
 * (px, py) given in original photo pixels, or undefined outside the region.
 */
export function photoToInput(px: number, py: number, region: Region, inputW: number, inputH: number): { x: number; y: number } | undefined {
  const u = (px - region.x) / region.width;
  const v = (py - region.y) / region.height;
  if (!(u >= 0 && u < 1 && v >= 0 && v < 1)) return undefined;
  return { x: u * inputW - 0.5, y: v * inputH - 0.5 };
}

/**
 * The map placed on an outW x outH picture of the whole photo (photoW x photoH original pixels):
 * bilinear inside the region, 0 outside it (0 leaves the photo unchanged when blended).
 */
export function placeMap(map: PlainMap, region: Region, photoW: number, photoH: number, outW: number, outH: number): Float32Array {
  const out = new Float32Array(outW * outH);
  const sx = photoW / outW;
  const sy = photoH / outH;
  for (let y = 0; y < outH; y++) {
    const py = (y + 0.5) * sy;
    for (let x = 0; x < outW; x++) {
      const p = photoToInput((x + 0.5) * sx, py, region, map.width, map.height);
      if (p) out[y * outW + x] = sampleBilinear(map, p.x, p.y);
    }
  }
  return out;
}

/** A copy of an RGB picture of the whole photo with the pixels outside the region darkened. */
export function dimOutside(rgb: ArrayLike<number>, outW: number, outH: number, region: Region, photoW: number, photoH: number, keep = DIM_OUTSIDE): Uint8Array {
  const out = Uint8Array.from(rgb as ArrayLike<number>);
  const sx = photoW / outW;
  const sy = photoH / outH;
  for (let y = 0; y < outH; y++) {
    const py = (y + 0.5) * sy;
    const inY = py >= region.y && py < region.y + region.height;
    for (let x = 0; x < outW; x++) {
      const px = (x + 0.5) * sx;
      if (inY && px >= region.x && px < region.x + region.width) continue;
      const o = (y * outW + x) * 3;
      out[o] = Math.round(out[o] * keep);
      out[o + 1] = Math.round(out[o + 1] * keep);
      out[o + 2] = Math.round(out[o + 2] * keep);
    }
  }
  return out;
}

/** Whether a region leaves part of the photo out (or reaches beyond it). */
export function isPartial(region: Region | undefined, photoW: number, photoH: number): region is Region {
  return !!region && (region.x !== 0 || region.y !== 0 || region.width !== photoW || region.height !== photoH);
}
