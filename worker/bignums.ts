// CBOR bignums (tags 2 and 3: a BigInt past 64 bits) as the worker decodes
// them. cbor-x builds one a byte at a time into a growing BigInt, which takes
// time quadratic in its length: a 256 KiB bignum held the object for half a
// minute, and any socket may send one in a frame before it says HELLO. Here a
// bignum is read in one step, and one longer than MAX_BIGINT_BYTES is refused
// (the frame or value holding it does not decode), so that no library, which
// still reads bignums the slow way, is sent one that takes long to read.
//
// cbor-x keeps its tag decoders per module, so this applies to every decode
// in the worker: frames, values checked before they are stored, and the
// values the HTTP API and the inspector show.
import { addExtension } from "cbor-x";

/** Longest bignum, in bytes of its magnitude (8,192 bits; about 2,466 decimal digits). */
export const MAX_BIGINT_BYTES = 1024;

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function magnitude(bytes: unknown): bigint {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("a CBOR bignum holds a byte string");
  if (bytes.byteLength > MAX_BIGINT_BYTES) throw new RangeError(`a BigInt is limited to ${MAX_BIGINT_BYTES} bytes (got ${bytes.byteLength})`);
  let hex = "0x0";
  for (const byte of bytes) hex += HEX[byte];
  return BigInt(hex);
}

// (cbor-x's types ask for an encoder too; only decoding changes, as its addExtension allows.)
addExtension({ tag: 2, decode: (bytes: unknown) => magnitude(bytes) } as never);
addExtension({ tag: 3, decode: (bytes: unknown) => -1n - magnitude(bytes) } as never);
