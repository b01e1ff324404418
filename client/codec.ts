// The value codec: CBOR (RFC 8949) through cbor-x, configured so that every
// shareable value round-trips exactly, and a guard that rejects everything
// else at the call site instead of letting the encoder mangle it.
import { Encoder, addExtension } from "cbor-x";
import { LimitError } from "./errors.js";
import { ErrorCode } from "./protocol.js";

// cbor-x writes an ArrayBuffer as a plain byte string, which reads back as a
// Uint8Array. A tag of its own (first-come-first-served range) keeps the type.
// Uint8Array itself is tagged 64 (RFC 8746) by the encoder options below.
const ARRAY_BUFFER_TAG = 41000;
addExtension({
  Class: ArrayBuffer,
  tag: ARRAY_BUFFER_TAG,
  encode(buffer: ArrayBuffer, encode: (value: unknown) => Uint8Array) {
    return encode(new Uint8Array(buffer));
  },
  decode(bytes: Uint8Array) {
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  },
});

const valueCodec = new Encoder({
  structuredClone: true, // shared references and cycles (tags 28/29)
  useRecords: false, // plain CBOR maps, readable by any CBOR decoder
  mapsAsObjects: true,
  useTag259ForMaps: true, // a Map stays a Map, an object stays an object
  tagUint8Array: true,
  // A read is a copy: byte strings and typed arrays must not be views of the
  // bytes a replica holds (mutating one would change the replica).
  copyBuffers: true,
  largeBigIntToFloat: false,
  pack: false,
} as ConstructorParameters<typeof Encoder>[0]); // useTag259ForMaps is missing from cbor-x's types

/** Deepest nesting a shared value may have (the decoder recurses). */
export const MAX_DEPTH = 64;

const TYPED_ARRAYS: Function[] = [
  Uint8Array, Uint8ClampedArray, Uint16Array, Uint32Array, Int8Array, Int16Array,
  Int32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array,
];

/** A UTF-16 surrogate without its pair: CBOR text is UTF-8 and cannot hold it. */
const LONE_SURROGATE = /\p{Cs}/u;

function describe(value: unknown): string {
  if (typeof value === "function") return `a function (${(value as Function).name || "anonymous"})`;
  if (typeof value === "symbol") return `a symbol (${String(value)})`;
  const proto = Object.getPrototypeOf(value);
  const name = proto?.constructor?.name;
  return name ? `an instance of ${name}` : "an exotic object";
}

/**
 * Throws a TypeError unless `value` is made only of shareable parts: JSON
 * types, undefined, NaN/±Infinity, BigInt, Date, RegExp, Map, Set, typed
 * arrays, ArrayBuffer, plain objects and arrays (shared and cyclic too).
 * `key` names the value in the error ("the value of \"k\" ...").
 */
/** What errors call the value of `key` (none: an item, or a value alone). */
const subject = (key?: string) => key === undefined ? "the value" : `the value of ${JSON.stringify(key)}`;

export function assertShareable(value: unknown, key?: string): void {
  const seen = new Set<object>();
  const path: (string | number)[] = []; // built only to name the culprit
  const fail = (v: unknown, why = "cannot be shared", what = describe(v)): never => {
    const where = path.map((p) => (typeof p === "number" ? `[${p}]` : `.${p}`)).join("");
    throw new TypeError(`${subject(key)}${where ? ` at ${where}` : ""} is ${what}, which ${why}`);
  };
  const text = (s: string, what: string): void => {
    if (LONE_SURROGATE.test(s)) fail(s, "CBOR text cannot carry (it would arrive as U+FFFD)", `${what} with a lone surrogate`);
  };
  const onPath = new Set<object>(); // the containers being walked: a reference to one is a cycle
  const walk = (v: unknown, depth: number): void => {
    switch (typeof v) {
      case "string":
        return text(v, "a string");
      case "number": case "boolean": case "bigint": case "undefined":
        return;
      case "function": case "symbol":
        return fail(v);
    }
    if (v === null) return;
    const obj = v as object;
    if (seen.has(obj)) {
      // cbor-x decodes a cycle back to an object or array, but rebuilds a Map
      // or Set that (transitively) contains itself with empty objects in its
      // place: refuse it rather than deliver it changed.
      if (onPath.has(obj) && (obj instanceof Map || obj instanceof Set)) fail(obj, "cannot be shared when it contains itself", `a ${obj instanceof Map ? "Map" : "Set"}`);
      return;
    }
    if (depth > MAX_DEPTH) return fail(v, `is nested deeper than ${MAX_DEPTH} levels`);
    seen.add(obj);
    onPath.add(obj);
    walkContainer(obj, depth);
    onPath.delete(obj);
  };
  const walkContainer = (obj: object, depth: number): void => {
    const proto = Object.getPrototypeOf(obj);
    if (Array.isArray(obj)) {
      if (proto !== Array.prototype) return fail(obj);
      for (let i = 0; i < obj.length; i++) {
        path.push(i);
        walk(obj[i], depth + 1);
        path.pop();
      }
      return;
    }
    if (proto === Object.prototype || proto === null) {
      if (Object.getOwnPropertySymbols(obj).length > 0) return fail(Object.getOwnPropertySymbols(obj)[0]);
      for (const name in obj) {
        // cbor-x reads an own "__proto__" key back as "__proto_" (against prototype pollution).
        if (name === "__proto__") fail(name, "cannot be shared as an object key (use a Map)", 'a key named "__proto__"');
        text(name, "an object key");
        path.push(name);
        walk((obj as Record<string, unknown>)[name], depth + 1);
        path.pop();
      }
      return;
    }
    if (obj instanceof RegExp) return text(obj.source, "a RegExp");
    if (obj instanceof Date || obj instanceof ArrayBuffer) return;
    if (ArrayBuffer.isView(obj)) {
      if (TYPED_ARRAYS.some((T) => obj instanceof T)) return;
      return fail(obj);
    }
    if (obj instanceof Map) {
      if (proto !== Map.prototype) return fail(obj);
      for (const [k, item] of obj) {
        path.push(typeof k === "string" ? `get(${JSON.stringify(k)})` : "get(…)");
        walk(k, depth + 1);
        walk(item, depth + 1);
        path.pop();
      }
      return;
    }
    if (obj instanceof Set) {
      if (proto !== Set.prototype) return fail(obj);
      for (const item of obj) walk(item, depth + 1);
      return;
    }
    return fail(obj, "cannot be shared (only plain data can)");
  };
  walk(value, 0);
}

/**
 * Checks and encodes one shared value. Throws TypeError for unshareable
 * values, and LimitError (VALUE_TOO_LARGE) past `max` encoded bytes.
 */
export function encodeValue(value: unknown, key?: string, max = Infinity): Uint8Array {
  assertShareable(value, key);
  const bytes = valueCodec.encode(value);
  if (bytes.byteLength > max) throw new LimitError(ErrorCode.VALUE_TOO_LARGE, `${subject(key)} has ${bytes.byteLength} encoded bytes; the limit is ${max}`);
  // In Node the encoder returns a Buffer, and a replica decodes byte strings
  // as slices of what it holds (of its type): the writer would read its own Buffer back
  // as a Buffer while every other side gets a Uint8Array. A plain view of the
  // same memory keeps both sides alike (no copy).
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Decodes one shared value; throws on malformed bytes. */
export function decodeValue(bytes: Uint8Array): unknown {
  return valueCodec.decode(bytes);
}

/**
 * Is `bytes` one well-formed value, made only of shareable parts? (The
 * worker checks values it stores: a client that skips the library could
 * send CBOR the library never writes, such as an unknown tag or nesting past
 * MAX_DEPTH, which the HTTP API and other clients could not handle.)
 */
export function isWellFormedValue(bytes: Uint8Array): boolean {
  try {
    assertShareable(valueCodec.decode(bytes));
    return true;
  } catch {
    return false;
  }
}
