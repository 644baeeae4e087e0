// Reading the binary envelope (docs/frames.md): 4-byte little-endian header length N, N bytes of UTF-8
// JSON header, then the packed arrays the header lists as {name, dtype, shape, offset, nbytes}.

const TYPES = {
  uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array,
  uint32: Uint32Array, int32: Int32Array, float32: Float32Array, float64: Float64Array,
};
const utf8 = new TextDecoder();

/** @returns {{header: object, arrays: Object<string, {data: ArrayLike<number>, shape: number[]}>}} */
export function decodeFrame(buffer) {
  const n = new DataView(buffer).getUint32(0, true);
  const header = JSON.parse(utf8.decode(new Uint8Array(buffer, 4, n)));
  const body = 4 + n;
  const arrays = {};
  for (const a of header.arrays || []) {
    const Type = TYPES[a.dtype];
    if (!Type) continue;
    const start = body + a.offset;
    // Wider types need aligned offsets: copy them out (they are small: weights, gradient norms).
    const data = Type.BYTES_PER_ELEMENT === 1
      ? new Type(buffer, start, a.nbytes)
      : new Type(buffer.slice(start, start + a.nbytes));
    arrays[a.name] = { data, shape: a.shape };
  }
  return { header, arrays };
}
