// What the main canvas shows: the photo with the heatmap over the part the model saw (the rest
// dimmed, when the preprocessing cropped or padded), or "what the model saw" (the resized and
// cropped input with the map over all of it); and where a canvas pixel lands in the model input.
import { dimOutside, photoToInput, placeMap, type Region } from '../src/engine/io/placement';
import type { FloatMap, RgbImage } from './colormap';

export interface PhotoInfo {
  /** The photo as displayed (possibly downscaled). */
  image: RgbImage;
  /** The original photo's size (the region is in these pixels). */
  originalWidth: number;
  originalHeight: number;
}

let cache: { key: unknown[]; view: { image: RgbImage; map: FloatMap } } | undefined;

/** The picture and the map to blend for the photo view; cached per input. */
export function photoView(photo: PhotoInfo, map: FloatMap, region: Region | undefined): { image: RgbImage; map: FloatMap } {
  if (!region) return { image: photo.image, map };
  const key = [photo.image, map, region.x, region.y, region.width, region.height];
  if (cache && cache.key.length === key.length && cache.key.every((k, i) => k === key[i])) return cache.view;
  const { width: w, height: h } = photo.image;
  const view = {
    image: { width: w, height: h, rgb: dimOutside(photo.image.rgb, w, h, region, photo.originalWidth, photo.originalHeight) },
    map: { width: w, height: h, data: placeMap(map, region, photo.originalWidth, photo.originalHeight, w, h) },
  };
  cache = { key, view };
  return view;
}

/**
 * The model-input position (continuous, pixel centres at integers) under a point of the canvas
 * given as fractions (0..1) of its width and height; undefined outside the part the model saw.
 */
export function inputAt(fx: number, fy: number, map: FloatMap, region: Region | undefined, photo: { originalWidth: number; originalHeight: number } | undefined, modelView: boolean): { x: number; y: number } | undefined {
  if (modelView || !region || !photo) return { x: fx * map.width - 0.5, y: fy * map.height - 0.5 };
  return photoToInput(fx * photo.originalWidth, fy * photo.originalHeight, region, map.width, map.height);
}
