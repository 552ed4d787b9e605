// The tensor encoding, without a server: FLOAT16 and BFLOAT16 values are the
// nearest representable ones, ties to even (checked against a reference that
// searches the table of all 65536 values), as sampler/core/tensor.cc rounds them.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {floatToHalf, floatToBFloat16, encodeValues, toTensor} from '../../../clients/node/src/index.js';

function halfValue(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  if (exp === 0) return sign * mant * 2 ** -24;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function bfloat16Value(bits) {
  const view = new DataView(new ArrayBuffer(4));
  view.setUint32(0, bits << 16 >>> 0);
  return view.getFloat32(0);
}

// The nearest of the table's finite values (ties: the even bit pattern);
// beyond the largest finite value by half an ulp or more: infinity.
function reference(table, value) {
  if (Number.isNaN(value)) return null;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const magnitude = Math.abs(value);
  const {values, bits, overflow} = table;
  if (magnitude >= overflow) return sign | table.infinity;
  let lo = 0;
  let hi = values.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (values[mid] <= magnitude) lo = mid; else hi = mid;
  }
  const dLo = magnitude - values[lo];
  const dHi = values[hi] - magnitude;
  let pick;
  if (dLo < dHi) pick = lo;
  else if (dHi < dLo) pick = hi;
  else pick = (bits[lo] & 1) === 0 ? lo : hi;
  return sign | bits[pick];
}

function table(decode, infinity) {
  const entries = [];
  for (let b = 0; b < infinity; ++b) entries.push([decode(b), b]);  // positive finite, ascending
  const max = entries[entries.length - 1][0];
  const ulp = max - entries[entries.length - 2][0];
  return {values: entries.map((e) => e[0]), bits: entries.map((e) => e[1]),
          overflow: max + ulp / 2, infinity};
}

const HALF = table(halfValue, 0x7c00);
const BFLOAT16 = table(bfloat16Value, 0x7f80);

function floatFromBits(bits) {
  const view = new DataView(new ArrayBuffer(4));
  view.setUint32(0, bits >>> 0);
  return view.getFloat32(0);
}

// Random float32 bit patterns (every exponent), the halfway points and edges.
function samples() {
  const out = [0, -0, 1, -1, 0.1, 1 / 3, 65504, 65519, 65520, 65536, 2 ** -24, 2 ** -25,
               2 ** -25 * 1.0001, 3 * 2 ** -26, 2 ** -14, 2 ** -14 - 2 ** -25, Infinity,
               -Infinity, 3.4028234663852886e38, 1.401298464324817e-45];
  let x = 12345;
  for (let i = 0; i < 200000; ++i) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out.push(floatFromBits(x));
  }
  for (let b = 0; b < 0x7c00; b += 7) out.push(Math.fround((halfValue(b) + halfValue(b + 1)) / 2));
  for (let b = 0; b < 0x7f80; b += 7) {
    out.push(Math.fround((bfloat16Value(b) + bfloat16Value(b + 1)) / 2));
  }
  return out;
}

// Checks `encode` against the reference on every sample; returns how many.
function checkRounding(encode, values) {
  let checked = 0;
  for (const value of samples()) {
    const want = reference(values, value);
    if (want === null) continue;
    assert.equal(encode(value), want, `${value}`);
    ++checked;
  }
  return checked;
}

test('float16 rounds to the nearest value, ties to even, overflow to infinity', () => {
  assert.ok(checkRounding(floatToHalf, HALF) > 200000);
  assert.equal(floatToHalf(NaN), 0x7e00);
  assert.equal(floatToHalf(1), 0x3c00);
  assert.equal(floatToHalf(65520), 0x7c00);
  assert.equal(floatToHalf(-(2 ** -24)), 0x8001);
});

test('bfloat16 rounds to the nearest value, ties to even; NaN stays NaN', () => {
  assert.ok(checkRounding(floatToBFloat16, BFLOAT16) > 200000);
  assert.equal(floatToBFloat16(1), 0x3f80);
  assert.equal(floatToBFloat16(NaN), 0x7fc0);
  // A NaN whose payload is in the low bits only stays a NaN (quiet bit set).
  assert.equal(floatToBFloat16(floatFromBits(0x7f800001)), 0x7fc0);
});

test('tensors are row-major little-endian bytes with their dtype and shape', () => {
  assert.deepEqual([...encodeValues([1, -2], 'float32')], [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
  assert.deepEqual([...encodeValues([1, -2], 'bf16')], [0x80, 0x3f, 0x00, 0xc0]);
  assert.deepEqual([...encodeValues([1, -2], 'float16')], [0x00, 0x3c, 0x00, 0xc0]);
  const t = toTensor([[1, 2, 3], [4, 5, 6]], 'float32', 'attention');
  assert.equal(t.dtype, 'DTYPE_FLOAT32');
  assert.deepEqual(t.shape, [2, 3]);
  assert.deepEqual([...new Float32Array(t.data.buffer, t.data.byteOffset, 6)], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(toTensor({heads: 2, data: new Float32Array(6)}, 'bfloat16', 'a').shape, [2, 3]);
  assert.equal(toTensor(new Float32Array(5), 'f16', 'logits').dtype, 'DTYPE_FLOAT16');
  assert.throws(() => toTensor([[1, 2], [3]], 'float32', 'attention'), /rows of different lengths/);
});
