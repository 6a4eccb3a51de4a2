// Colormaps and heatmap pictures for the panel. The scaling, contrast, overlay weight and views
// are the engine's (src/engine/io/render.ts, pure), so the panel, the exported PNG and the CLI
// draw a map the same way. Pure functions (no DOM), unit-tested in Node.
import type { ColormapName, SignMode } from '../src/protocol';
import {
  colourAt,
  colourLut,
  composeHeatmap,
  renderMapRgba,
  type FloatMap,
  type RenderOptions,
  type RgbImage,
} from '../src/engine/io/render';

export {
  composeHeatmap,
  composedSize,
  describeScale,
  formatPercentile,
  filterSign,
  formatValue,
  imageColumnAt,
  mapScale,
  mapValueAt,
  maxAbs,
  normalise,
  sampleBilinear,
  SIGNED as SIGNED_COLORMAPS,
  type FloatMap,
  type MapScale,
  type RgbImage,
} from '../src/engine/io/render';

/** The colour at t in [0, 1] (clamped), RGB 0..255 integers. */
export function colormap(name: ColormapName, t: number): [number, number, number] {
  return colourAt(name, t);
}

/** An RGB lookup table of the colormap. */
export function colormapLut(name: ColormapName): Uint8Array {
  return colourLut(name);
}

export interface BlendOptions {
  colormap: ColormapName;
  /** 0..1: the heatmap's weight where relevance reaches the scale. */
  opacity: number;
  sign: SignMode;
  /** Percentile of |R| at full strength (default 99.5). */
  percentile?: number;
  /** An explicit |R| at full strength instead of the percentile. */
  scale?: number;
  gamma?: number;
}

/** The map stretched over the image and blended (the overlay view). RGBA bytes for ImageData. */
export function blendOverImage(image: RgbImage, map: FloatMap, opts: BlendOptions): Uint8ClampedArray {
  return composeHeatmap(image, map, { ...opts, view: 'overlay' }).rgba;
}

/** The map alone, at its own resolution, fully coloured (thumbnails, layer view). RGBA bytes. */
export function renderMap(map: FloatMap, opts: RenderOptions): Uint8ClampedArray {
  return renderMapRgba(map, opts);
}

/** CSS gradient stops for a legend. */
export function legendGradient(name: ColormapName, steps = 9): string {
  const parts: string[] = [];
  for (let i = 0; i < steps; i++) {
    const t = i / (steps - 1);
    const [r, g, b] = colormap(name, t);
    parts.push(`rgb(${r}, ${g}, ${b}) ${Math.round(t * 100)}%`);
  }
  return `linear-gradient(to right, ${parts.join(', ')})`;
}
