// The dict proxies: `client["k"]`, `client.globals["k"]`, `server["k"]`,
// `peer["k"]`. Every string property that is not a member of the handle nor
// a reserved name reads and writes the dict; any key at all stays reachable
// through `.dict`.
import type { SharedDict } from "./dict.js";

/** Names never mapped to a dict key, on every handle (beyond its own members). */
export const ALWAYS_RESERVED: readonly string[] = [
  "then", "catch", "finally", // `await handle` must not find a key named "then"
  "constructor", "prototype", "__proto__", "toJSON", "toString", "valueOf", "inspect",
];

const ALWAYS: ReadonlySet<string> = new Set(ALWAYS_RESERVED);

/**
 * The names a handle class keeps for itself: ALWAYS_RESERVED and its
 * members, inherited ones too, up to Object.prototype (whose names, members
 * of every handle as well, are reserved by dictProxy but not listed here).
 */
export function reservedNames(handle: Function): ReadonlySet<string> {
  const names = new Set(ALWAYS_RESERVED);
  for (let proto = handle.prototype; proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const name of Object.getOwnPropertyNames(proto)) names.add(name);
  }
  return names;
}

/** Wraps `target` so that its string properties that are neither members nor reserved are the keys of `dict()`. */
export function dictProxy<T extends object>(target: T, dict: () => SharedDict): T {
  const bound = new Map<string | symbol, Function>();
  const member = (name: string | symbol) => typeof name === "symbol" || ALWAYS.has(name) || name in target;
  return new Proxy(target, {
    get(t, name) {
      if (!member(name)) return dict().get(name as string);
      const value = Reflect.get(t, name, t);
      if (typeof value !== "function") return value;
      // Methods run on the real object (private fields do not pass through a proxy).
      let fn = bound.get(name);
      if (!fn) bound.set(name, (fn = value.bind(t)));
      return fn;
    },
    set(t, name, value) {
      if (member(name)) {
        throw new TypeError(`${String(name)} is a reserved name here; use .dict.set(${JSON.stringify(String(name))}, value)`);
      }
      dict().set(name as string, value);
      return true;
    },
    has(t, name) {
      return member(name) ? Reflect.has(t, name) : dict().has(name as string);
    },
    deleteProperty(t, name) {
      if (member(name)) throw new TypeError(`${String(name)} is a reserved name here; use .dict.delete(${JSON.stringify(String(name))})`);
      dict().delete(name as string);
      return true;
    },
    ownKeys() {
      return [...dict().keys()];
    },
    getOwnPropertyDescriptor(t, name) {
      if (member(name) || !dict().has(name as string)) return undefined;
      return { value: dict().get(name as string), writable: true, enumerable: true, configurable: true };
    },
    defineProperty(t, name, descriptor) {
      if (member(name) || !("value" in descriptor)) return false;
      dict().set(name as string, descriptor.value);
      return true;
    },
  });
}

/** A console-friendly rendering for Node's util.inspect (no Node import needed). */
export const inspectSymbol = Symbol.for("nodejs.util.inspect.custom");
