// Putting pixels on a canvas (the panels' pictures): RGBA as it is, RGB with an opaque alpha.
import type { RgbImage } from './colormap';

/** Sizes the canvas to the picture and draws its RGBA bytes. */
export function putPixels(canvas: HTMLCanvasElement, width: number, height: number, rgba: Uint8ClampedArray): void {
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const img = ctx.createImageData(width, height);
  img.data.set(rgba);
  ctx.putImageData(img, 0, 0);
}

/** Draws RGB pixels (8 bit, row-major); a buffer of the wrong size draws nothing. */
export function putRgb(canvas: HTMLCanvasElement, img: RgbImage): void {
  const n = img.width * img.height;
  if (img.rgb.length !== n * 3) return;
  const rgba = new Uint8ClampedArray(n * 4);
  for (let p = 0; p < n; p++) {
    rgba[p * 4] = img.rgb[p * 3];
    rgba[p * 4 + 1] = img.rgb[p * 3 + 1];
    rgba[p * 4 + 2] = img.rgb[p * 3 + 2];
    rgba[p * 4 + 3] = 255;
  }
  putPixels(canvas, img.width, img.height, rgba);
}
