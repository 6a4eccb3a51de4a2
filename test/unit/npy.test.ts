import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readNpy, writeNpy } from '../../src/engine/io/npy';
import { loadImageTensor } from '../../src/engine/io/image';
import { f32, type Tensor } from '../../src/engine/graph/graph';
import { REFERENCE_DIR } from '../helpers';

const REF = REFERENCE_DIR;

/** A .npy file built by hand, as numpy would write it (version and header layout configurable). */
function npyBytes(descr: string, shape: string, payload: Uint8Array, opts: { major?: number; fortran?: boolean } = {}): Uint8Array {
  const major = opts.major ?? 1;
  const lenBytes = major === 1 ? 2 : 4;
  const dict = `{'descr': '${descr}', 'fortran_order': ${opts.fortran ? 'True' : 'False'}, 'shape': ${shape}, }`;
  const prefix = 8 + lenBytes;
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  const text = dict.padEnd(total - prefix - 1, ' ') + '\n';
  const out = new Uint8Array(total + payload.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const dv = new DataView(out.buffer);
  if (lenBytes === 2) dv.setUint16(8, text.length, true);
  else dv.setUint32(8, text.length, true);
  out.set(new TextEncoder().encode(text), prefix);
  out.set(payload, total);
  return out;
}

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

test('writeNpy then readNpy round-trips float32, header padded to 64 bytes', () => {
  const t = f32([2, 3, 4], Array.from({ length: 24 }, (_, i) => i * 0.5 - 3));
  const bytes = writeNpy(t);
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset).getUint16(8, true);
  assert.equal((10 + headerLen) % 64, 0);
  assert.equal(bytes[10 + headerLen - 1], 0x0a);
  const back = readNpy(bytes, 'mem.npy');
  assert.equal(back.dtype, 'float32');
  assert.deepEqual(back.dims, [2, 3, 4]);
  assert.deepEqual(Array.from(back.data as Float32Array), Array.from(t.data as Float32Array));
});

test('writeNpy handles 1-D and scalar shapes', () => {
  assert.deepEqual(readNpy(writeNpy(f32([5], [1, 2, 3, 4, 5])), 'a').dims, [5]);
  const s = readNpy(writeNpy(f32([], [7])), 'b');
  assert.deepEqual(s.dims, []);
  assert.equal(s.data[0], 7);
  assert.match(Buffer.from(writeNpy(f32([5]))).toString('latin1'), /'shape': \(5,\)/);
});

test('writeNpy output is byte-identical to the numpy-written fixture', () => {
  const path = `${REF}/digits-cnn/inputs/sample0.npy`;
  const bytes = readFileSync(path);
  assert.deepEqual(Buffer.from(writeNpy(readNpy(bytes, path))), bytes);
});

test('readNpy reads versions 2.0 and 3.0', () => {
  const payload = bytesOf(new Float32Array([1.5, -2]));
  for (const major of [2, 3]) {
    const t = readNpy(npyBytes('<f4', '(2,)', payload, { major }), 'v.npy');
    assert.deepEqual(Array.from(t.data as Float32Array), [1.5, -2]);
  }
});

test('readNpy converts <f8 to float32 and reads integer dtypes', () => {
  const f8 = readNpy(npyBytes('<f8', '(2, 1)', bytesOf(new Float64Array([0.25, 3]))), 'f8.npy');
  assert.equal(f8.dtype, 'float32');
  assert.deepEqual(f8.dims, [2, 1]);
  assert.deepEqual(Array.from(f8.data as Float32Array), [0.25, 3]);
  const i8 = readNpy(npyBytes('<i8', '(2,)', bytesOf(new BigInt64Array([5n, -1n]))), 'i8.npy');
  assert.equal(i8.dtype, 'int64');
  assert.deepEqual(Array.from(i8.data as BigInt64Array), [5n, -1n]);
  const i4 = readNpy(npyBytes('<i4', '(3,)', bytesOf(new Int32Array([1, -2, 3]))), 'i4.npy');
  assert.equal(i4.dtype, 'int32');
  assert.deepEqual(Array.from(i4.data as Int32Array), [1, -2, 3]);
  const u1 = readNpy(npyBytes('|u1', '(2, 2)', new Uint8Array([0, 1, 254, 255])), 'u1.npy');
  assert.equal(u1.dtype, 'uint8');
  assert.deepEqual(Array.from(u1.data as Uint8Array), [0, 1, 254, 255]);
});

test('readNpy works on a Buffer that is a view into a larger pool', () => {
  const bytes = writeNpy(f32([3], [1, 2, 3]));
  const pool = Buffer.alloc(bytes.length + 17);
  pool.set(bytes, 17);
  assert.deepEqual(Array.from(readNpy(pool.subarray(17), 'x').data as Float32Array), [1, 2, 3]);
});

test('readNpy errors name the source and the problem', () => {
  const f4 = bytesOf(new Float32Array([1, 2]));
  const cases: [Uint8Array, RegExp][] = [
    [new TextEncoder().encode('hello, not numpy'), /^bad\.npy: not an \.npy file/],
    [npyBytes('<f4', '(2,)', f4, { fortran: true }), /^bad\.npy: .*Fortran/],
    [npyBytes('>f4', '(2,)', f4), /^bad\.npy: big-endian/],
    [npyBytes('<c8', '(2,)', f4), /^bad\.npy: unsupported dtype '<c8'/],
    [npyBytes('<f4', '(4,)', f4), /^bad\.npy: truncated data/],
    [npyBytes('<f4', '(2,)', f4).subarray(0, 30), /^bad\.npy: truncated .npy header/],
  ];
  for (const [bytes, re] of cases) assert.throws(() => readNpy(bytes, 'bad.npy'), { message: re });
});

function maxAbsDiff(a: Tensor, b: Tensor): number {
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(Number(a.data[i]) - Number(b.data[i])));
  return m;
}

test('digits-cnn sample0.npy matches its png preprocessed with preset unit, 1 channel', async () => {
  const path = `${REF}/digits-cnn/inputs/sample0.npy`;
  const ref = readNpy(readFileSync(path), path);
  assert.deepEqual(ref.dims, [1, 1, 28, 28]);
  const { tensor } = await loadImageTensor(`${REF}/digits-cnn/inputs/sample0.png`, {
    width: 28, height: 28, channels: 1, layout: 'NCHW', preset: 'unit',
  });
  assert.deepEqual(tensor.dims, [1, 1, 28, 28]);
  assert.ok(maxAbsDiff(tensor, ref) <= 1 / 255 + 1e-6);
});

test('shapes-vgg sample0.npy matches its png preprocessed with preset imagenet', async () => {
  const path = `${REF}/shapes-vgg/inputs/sample0.npy`;
  const ref = readNpy(readFileSync(path), path);
  assert.deepEqual(ref.dims, [1, 3, 64, 64]);
  const { tensor } = await loadImageTensor(`${REF}/shapes-vgg/inputs/sample0.png`, {
    width: 64, height: 64, channels: 3, layout: 'NCHW', preset: 'imagenet',
  });
  assert.ok(maxAbsDiff(tensor, ref) < 1e-5);
});
