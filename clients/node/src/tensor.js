'use strict';
// sampler.v1.Tensor encoding: raw row-major little-endian bytes with a dtype
// and a shape (proto/sampler/v1/tensor.proto). FLOAT16 and BFLOAT16 round to
// nearest even exactly as sampler/core/tensor.cc's FloatToHalf and FloatToBFloat16,
// so a row encoded here is byte for byte what a C++ runner would send.

const DTYPES = {
  float32: {wire: 'DTYPE_FLOAT32', size: 4},
  float16: {wire: 'DTYPE_FLOAT16', size: 2},
  bfloat16: {wire: 'DTYPE_BFLOAT16', size: 2},
};
const DTYPE_ALIASES = {f32: 'float32', f16: 'float16', bf16: 'bfloat16'};

function dtypeOf(name = 'float32') {
  const key = DTYPE_ALIASES[name] || name;
  if (!DTYPES[key]) {
    throw new TypeError(`dtype must be float32, float16 or bfloat16, got ${JSON.stringify(name)}`);
  }
  return DTYPES[key];
}

const scratch = new DataView(new ArrayBuffer(4));
function floatBits(value) {
  scratch.setFloat32(0, value, true);
  return scratch.getUint32(0, true);
}

function floatToBFloat16(value) {
  const u = floatBits(value);
  if ((u & 0x7fffffff) >>> 0 > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;  // NaN
  const rounding = 0x7fff + ((u >>> 16) & 1);
  return ((u + rounding) >>> 16) & 0xffff;  // u + rounding < 2^32 for every non-NaN u
}

function floatToHalf(value) {
  let u = floatBits(value);
  const sign = (u >>> 16) & 0x8000;
  u = (u & 0x7fffffff) >>> 0;
  if (u > 0x7f800000) return sign | 0x7e00;  // NaN
  if (u >= 0x477ff000) return sign | 0x7c00;  // overflow -> inf (>= 65520)
  if (u < 0x38800000) {  // subnormal or zero
    if (u < 0x33000000) return sign;  // < 2^-25 rounds to 0
    const exp = u >>> 23;
    const mant = (u & 0x7fffff) | 0x800000;
    const shift = 126 - exp;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1))) ++half;
    return sign | half;
  }
  const rounded = u + 0xfff + ((u >>> 13) & 1);
  return sign | (((rounded >>> 13) - (112 << 10)) & 0xffff);
}

// Element bytes of `values` (any array-like of numbers) in `dtype`.
function encodeValues(values, dtype = 'float32') {
  const {size} = dtypeOf(dtype);
  const key = DTYPE_ALIASES[dtype] || dtype;
  const out = Buffer.alloc(values.length * size);
  if (key === 'float32') {
    for (let i = 0; i < values.length; ++i) out.writeFloatLE(values[i], 4 * i);
  } else {
    const convert = key === 'float16' ? floatToHalf : floatToBFloat16;
    for (let i = 0; i < values.length; ++i) out.writeUInt16LE(convert(values[i]), 2 * i);
  }
  return out;
}

function isNumbers(value) {
  return ArrayBuffer.isView(value) && !(value instanceof DataView) ||
      Array.isArray(value) && value.every((v) => typeof v === 'number');
}

// A sampler.v1.Tensor object from what a caller gives:
//   - numbers (Float32Array, any typed array, plain array): shape [n];
//   - an array of number rows ([[...], [...]]): shape [rows, columns];
//   - {data, shape}: numbers with an explicit row-major shape (any rank);
//   - {heads, keys?, data}: attention scores, shape [heads, keys];
//   - {dtype: 'DTYPE_…', shape, data: Buffer}: an encoded tensor, sent as is.
// `dtype` (float32, float16, bfloat16) chooses the wire type of numbers.
function toTensor(value, dtype, where) {
  if (value === undefined || value === null) return undefined;
  const {wire} = dtypeOf(dtype);
  if (isNumbers(value)) {
    return {dtype: wire, shape: [value.length], data: encodeValues(value, dtype)};
  }
  if (Array.isArray(value)) {
    if (!value.every(isNumbers)) {
      throw new TypeError(`${where} must hold numbers or rows of numbers`);
    }
    const columns = value.length ? value[0].length : 0;
    if (value.some((row) => row.length !== columns)) {
      throw new TypeError(`${where}: rows of different lengths`);
    }
    const flat = new Float64Array(value.length * columns);
    value.forEach((row, i) => flat.set(row, i * columns));
    return {dtype: wire, shape: [value.length, columns], data: encodeValues(flat, dtype)};
  }
  if (typeof value !== 'object') throw new TypeError(`${where} must be numbers or an object`);
  if (typeof value.dtype === 'string' && value.dtype.startsWith('DTYPE_')) {
    return {dtype: value.dtype, shape: value.shape || [], data: value.data};
  }
  if (!isNumbers(value.data)) throw new TypeError(`${where}.data must be numbers`);
  let shape = value.shape;
  if (shape === undefined && value.heads !== undefined) {
    const keys = value.keys ?? value.data.length / value.heads;
    shape = [value.heads, keys];
  }
  if (!Array.isArray(shape)) throw new TypeError(`${where} needs a shape (or heads)`);
  const numel = shape.reduce((a, b) => a * b, 1);
  if (numel !== value.data.length) {
    throw new TypeError(`${where}: shape [${shape.join(', ')}] holds ${numel} values, ` +
                        `data has ${value.data.length}`);
  }
  return {dtype: wire, shape, data: encodeValues(value.data, dtype)};
}

module.exports = {toTensor, encodeValues, floatToHalf, floatToBFloat16, dtypeOf};
