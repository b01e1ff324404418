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
}

/** The value ran past its budget (as opposed to a cycle or too deep a nesting, which no budget cures). */
export class OverBudgetError extends NotJsonError {}

export function toJson(value: unknown, budget = DEFAULT_BUDGET): string {
  return JSON.stringify(jsonTree(value, { total: budget, left: budget }));
}

/** A new budget of the default size. */
export function jsonBudget(total = DEFAULT_BUDGET): JsonBudget {
  return { total, left: total };
}

/** `value` as what JSON.stringify writes as toJson describes, spending `budget`; throws NotJsonError. */
export function jsonTree(value: unknown, budget: JsonBudget): unknown {
  const over = () => new OverBudgetError(`more than ${budget.total} nodes as JSON (shared references expand)`);
  const path = new Set<object>();
  // A Map key that is not a string is written as text. An object key is
  // written as its JSON, through the same walk: String() would expand its
  // shared references past any budget ([x, x] nested 40 deep is 300 bytes of
  // CBOR and minutes of CPU), and throws for a key like { toString: 0 }.
  const keyText = (key: unknown): string => {
    if (typeof key === "string") return key;
    if (key === null || typeof key !== "object") return String(key);
    const shown = convert(key);
    return typeof shown === "string" ? shown : JSON.stringify(shown);
  };
  const convert = (v: unknown): unknown => {
    if (--budget.left < 0) throw over();
    if (typeof v === "bigint") return v.toString();
    if (typeof v === "number") return Number.isFinite(v) ? v : String(v);
    if (v === undefined) return null;
    if (v === null || typeof v !== "object") return v;
    if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
    if (v instanceof RegExp) return String(v);
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

/** A short JSON preview of a value for the inspector, never failing. */
export function preview(value: unknown, maxChars = 300): string {
  let text: string;
  try {
    text = toJson(value, 10_000);
  } catch (error) {
    return error instanceof NotJsonError ? `(not shown as JSON: ${error.message})` : "(not shown)";
  }
  return text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
}
