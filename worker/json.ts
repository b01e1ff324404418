// Shared values as JSON for the HTTP API and the inspector. A value may hold
// shared references and cycles (CBOR keeps them), so a plain JSON.stringify
// could loop, throw, or expand 200 bytes of CBOR into gigabytes: this walks
// the value once with a budget and refuses what JSON cannot show faithfully.
//
// JSON shows a BigInt as a string, NaN and ±Infinity as strings, undefined as
// null, a Map as an object (non-string keys as text: an object key as its
// JSON, a Date key as its ISO string), a Set as an array,
// bytes as an array of numbers, a Date as its ISO string, a RegExp as its
// source text. CBOR (Accept: application/cbor) is exact.

/** The value cannot be shown as JSON: a cycle, or more than the budget. */
export class NotJsonError extends Error {}

/** Most nodes one JSON text may hold (a repeated reference counts each time it is written; a byte, one each). */
const DEFAULT_BUDGET = 1_000_000;

/**
 * Most characters of text (strings, object and Map keys, BigInt digits,
 * RegExp sources) one JSON text may hold, counted each time they are
 * written. Nodes alone do not bound the text: a 64 KiB string in an array
 * that a value refers to 10,000 times is 20,000 nodes and 655 MB of JSON.
 * A value with no shared references holds less text than its encoded bytes
 * (at most 1 MiB), plus its BigInts' digits.
 */
const DEFAULT_TEXT = 8 * 1024 * 1024;

/**
 * Deepest nesting written, against a stack overflow. Not MAX_DEPTH: a value
 * within it where each part is first met may hold a shared reference deeper
 * down, which JSON writes out again there (the budget bounds the size).
 */
const MAX_JSON_DEPTH = 1000;

/** What a JSON text may still spend, in nodes; one budget may span several values (a page of a dict). */
export interface JsonBudget {
  /** The whole budget (for messages). */
  readonly total: number;
  left: number;
  /** The whole budget of text, in characters (for messages). */
  readonly totalText: number;
  textLeft: number;
}

/** The value ran past its budget (as opposed to a cycle or too deep a nesting, which no budget cures). */
export class OverBudgetError extends NotJsonError {}

export function toJson(value: unknown, budget = DEFAULT_BUDGET, text = DEFAULT_TEXT): string {
  return JSON.stringify(jsonTree(value, jsonBudget(budget, text)));
}

/** A new budget, of the default size unless given. */
export function jsonBudget(total = DEFAULT_BUDGET, text = DEFAULT_TEXT): JsonBudget {
  return { total, left: total, totalText: text, textLeft: text };
}

/** `value` as what JSON.stringify writes as toJson describes, spending `budget`; throws NotJsonError. */
export function jsonTree(value: unknown, budget: JsonBudget): unknown {
  const over = () => new OverBudgetError(`more than ${budget.total} nodes as JSON (shared references expand)`);
  /** `text`, once its length is spent from the text budget. */
  const spend = (text: string): string => {
    if ((budget.textLeft -= text.length) < 0) throw new OverBudgetError(`more than ${budget.totalText} characters of text as JSON (shared references expand)`);
    return text;
  };
  const path = new Set<object>();
  // A Map key that is not a string is written as text. An object key is
  // written as its JSON, through the same walk: String() would expand its
  // shared references past any budget ([x, x] nested 40 deep is 300 bytes of
  // CBOR and minutes of CPU), and throws for a key like { toString: 0 }.
  const keyText = (key: unknown): string => {
    if (typeof key === "string") return spend(key);
    if (key === null || typeof key !== "object") return spend(String(key));
    const shown = convert(key);
    return typeof shown === "string" ? shown : JSON.stringify(shown);
  };
  const convert = (v: unknown): unknown => {
    if (--budget.left < 0) throw over();
    if (typeof v === "bigint") return spend(v.toString());
    if (typeof v === "string") return spend(v);
    if (typeof v === "number") return Number.isFinite(v) ? v : String(v);
    if (v === undefined) return null;
    if (v === null || typeof v !== "object") return v;
    if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
    if (v instanceof RegExp) return spend(String(v));
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
      // Bytes are written one number each: a shared 16 KiB array is 16 Ki nodes every time.
      if ((budget.left -= v.byteLength) < 0) throw over();
      return Array.from(ArrayBuffer.isView(v) ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : new Uint8Array(v));
    }
    if (path.has(v)) throw new NotJsonError("it holds a cycle");
    if (path.size > MAX_JSON_DEPTH) throw new NotJsonError(`it is nested deeper than ${MAX_JSON_DEPTH} levels`);
    path.add(v);
    try {
      if (Array.isArray(v) || v instanceof Set) return Array.from(v, convert);
      // A null-prototype object keeps a key named __proto__ an ordinary key.
      const out: Record<string, unknown> = Object.create(null);
      const entries = v instanceof Map ? v.entries() : Object.entries(v);
      for (const [key, item] of entries) out[keyText(key)] = convert(item);
      return out;
    } finally {
      path.delete(v);
    }
  };
  return convert(value);
}

/**
 * Text one preview may write: what a value without shared references holds
 * (its strings are no longer than its encoded bytes), so only one that
 * expands is not shown.
 */
const PREVIEW_TEXT = 1024 * 1024;

/** A short JSON preview of a value for the inspector, never failing. */
export function preview(value: unknown, maxChars = 300): string {
  let text: string;
  try {
    text = toJson(value, 10_000, PREVIEW_TEXT);
  } catch (error) {
    return error instanceof NotJsonError ? `(not shown as JSON: ${error.message})` : "(not shown)";
  }
  return text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
}
