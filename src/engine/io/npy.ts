// NumPy .npy reading and writing (format versions 1.0, 2.0 and 3.0; little-endian, C order).
// Spec: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html

import type { DType, Tensor, TensorData } from '../graph/graph';
import { numel } from '../graph/graph';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** How one on-disk dtype is read: item size and a decoder from an aligned byte copy. */
interface DescrReader {
  size: number;
  dtype: DType;
  read: (buf: ArrayBuffer, n: number) => TensorData;
}

const READERS: Record<string, DescrReader> = {
  '<f4': { size: 4, dtype: 'float32', read: (b, n) => new Float32Array(b, 0, n) },
  '<f8': { size: 8, dtype: 'float32', read: (b, n) => Float32Array.from(new Float64Array(b, 0, n)) },
  '<i8': { size: 8, dtype: 'int64', read: (b, n) => new BigInt64Array(b, 0, n) },
  '<i4': { size: 4, dtype: 'int32', read: (b, n) => new Int32Array(b, 0, n) },
  '|u1': { size: 1, dtype: 'uint8', read: (b, n) => new Uint8Array(b, 0, n) },
  '<u1': { size: 1, dtype: 'uint8', read: (b, n) => new Uint8Array(b, 0, n) },
  '|b1': { size: 1, dtype: 'bool', read: (b, n) => new Uint8Array(b, 0, n) },
};

const WRITE_DESCR: Record<DType, string> = {
  float32: '<f4',
  float64: '<f8',
  int64: '<i8',
  int32: '<i4',
  uint8: '|u1',
  bool: '|b1',
};

interface Header {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  dataOffset: number;
}

function fail(source: string, what: string): never {
  throw new Error(`${source}: ${what}`);
}

function hasMagic(bytes: Uint8Array): boolean {
  return bytes.length >= MAGIC.length && MAGIC.every((b, i) => bytes[i] === b);
}

/** Header length field and its position, by format version. */
function headerSpan(bytes: Uint8Array, source: string): { start: number; length: number; utf8: boolean } {
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (major === 1) {
    if (bytes.length < 10) fail(source, 'truncated .npy header');
    return { start: 10, length: view.getUint16(8, true), utf8: false };
  }
  if (major === 2 || major === 3) {
    if (bytes.length < 12) fail(source, 'truncated .npy header');
    return { start: 12, length: view.getUint32(8, true), utf8: major === 3 };
  }
  return fail(source, `unsupported .npy format version ${major}.${bytes[7]} (expected 1.0, 2.0 or 3.0)`);
}

function dictEntry(text: string, key: string, valuePattern: string, source: string): string {
  const m = new RegExp(`['"]${key}['"]\\s*:\\s*(${valuePattern})`).exec(text);
  if (!m) fail(source, `.npy header has no valid '${key}' entry: ${text.trim()}`);
  return m[1];
}

function parseShape(raw: string, source: string): number[] {
  const inner = raw.slice(1, -1).trim();
  if (inner === '') return [];
  const parts = inner.split(',').map((s) => s.trim()).filter((s) => s !== '');
  return parts.map((p) => {
    if (!/^\d+L?$/.test(p)) fail(source, `.npy header has a bad shape ${raw}`);
    return parseInt(p, 10);
  });
}

function parseHeader(bytes: Uint8Array, source: string): Header {
  if (!hasMagic(bytes)) fail(source, 'not an .npy file (missing \\x93NUMPY magic)');
  const span = headerSpan(bytes, source);
  const end = span.start + span.length;
  if (bytes.length < end) fail(source, 'truncated .npy header');
  const text = new TextDecoder(span.utf8 ? 'utf-8' : 'latin1').decode(bytes.subarray(span.start, end));
  const descr = dictEntry(text, 'descr', `'[^']*'|"[^"]*"`, source).slice(1, -1);
  const fortran = dictEntry(text, 'fortran_order', 'True|False', source) === 'True';
  const shape = parseShape(dictEntry(text, 'shape', '\\([^)]*\\)', source), source);
  return { descr, fortranOrder: fortran, shape, dataOffset: end };
}

function readerFor(descr: string, source: string): DescrReader {
  const r = READERS[descr];
  if (r) return r;
  if (descr.startsWith('>')) fail(source, `big-endian data ('${descr}') is not supported; save it little-endian`);
  return fail(source, `unsupported dtype '${descr}' (supported: ${Object.keys(READERS).join(', ')})`);
}

/** Parse a .npy file. `source` names the file in error messages. `<f8` is converted to float32. */
export function readNpy(bytes: Uint8Array, source: string): Tensor {
  const h = parseHeader(bytes, source);
  if (h.fortranOrder) fail(source, 'Fortran-order (column-major) arrays are not supported; save with C order');
  const reader = readerFor(h.descr, source);
  const n = numel(h.shape);
  const byteLen = n * reader.size;
  const available = bytes.length - h.dataOffset;
  if (available < byteLen) {
    fail(source, `truncated data: shape (${h.shape.join(', ')}) needs ${byteLen} bytes, file has ${available}`);
  }
  // Copy into a fresh, aligned buffer (the data offset need not be a multiple of the item size).
  // (Not bytes.slice: on a Node Buffer that is a view, not a copy.)
  const copy = new Uint8Array(byteLen);
  copy.set(bytes.subarray(h.dataOffset, h.dataOffset + byteLen));
  return { dtype: reader.dtype, dims: h.shape, data: reader.read(copy.buffer, n) };
}

function shapeLiteral(dims: readonly number[]): string {
  if (dims.length === 1) return `(${dims[0]},)`;
  return `(${dims.join(', ')})`;
}

function headerBytes(descr: string, dims: readonly number[]): Uint8Array {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeLiteral(dims)}, }`;
  const prefix = 10; // magic (6) + version (2) + header length (2)
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  const text = dict.padEnd(total - prefix - 1, ' ') + '\n';
  const out = new Uint8Array(total);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, text.length, true);
  for (let i = 0; i < text.length; i++) out[prefix + i] = text.charCodeAt(i);
  return out;
}

/** Serialise a tensor as .npy version 1.0 (float32 as `<f4`), header padded to 64 bytes like numpy. */
export function writeNpy(t: Tensor): Uint8Array {
  const n = numel(t.dims);
  if (t.data.length !== n) {
    throw new Error(`writeNpy: tensor has ${t.data.length} values but shape (${t.dims.join(', ')}) needs ${n}`);
  }
  const head = headerBytes(WRITE_DESCR[t.dtype], t.dims);
  const body = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const out = new Uint8Array(head.length + body.length);
  out.set(head, 0);
  out.set(body, head.length);
  return out;
}
