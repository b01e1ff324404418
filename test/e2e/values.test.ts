// Every value the README promises round-trips exactly between a client and
// the server, in both directions and both dicts; everything else is refused
// with a TypeError where it is written, and nothing reaches the other side.
import { describe, expect, test } from "vitest";
import type { ChangeEvent } from "sharevars";
import { handles } from "../helpers/handles.js";
import { uniqueSpace, until } from "../helpers/e2e.js";

const open = handles();

async function connect(label: string) {
  const space = uniqueSpace(label);
  const client = await open.client(space, "alice");
  const server = await open.server(space);
  const peer = server.clients.get("alice");
  await peer.ready;
  return { client, server, peer };
}

function nest(depth: number): unknown {
  let value: unknown = "bottom";
  for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { down: value };
  return value;
}

const VALUES: [string, unknown][] = [
  ["null", null],
  ["true", true],
  ["false", false],
  ["zero", 0],
  ["an integer", 42],
  ["a negative integer", -7],
  ["a float", 0.1],
  ["MAX_SAFE_INTEGER", Number.MAX_SAFE_INTEGER],
  ["2**53 + 2", 2 ** 53 + 2],
  ["1e300", 1e300],
  ["MIN_VALUE", Number.MIN_VALUE],
  ["2**64 as a number", 2 ** 64],
  ["an empty string", ""],
  ["a string", "hello"],
  ["a unicode string", "héllo wörld — 日本語 🎉 \u0000 \n"],
  ["a long string", "x".repeat(100_000)],
  ["an empty array", []],
  ["an empty object", {}],
  ["an array", [1, "two", null, [3], { four: 4 }]],
  ["an object", { a: 1, b: { c: [true, null] }, "": "empty key", "0": "numeric key", "with space": 1 }],
  ["undefined", undefined],
  ["undefined in an object", { a: undefined, b: 1 }],
  ["undefined in an array", [undefined, 1, undefined]],
  ["NaN", NaN],
  ["Infinity", Infinity],
  ["-Infinity", -Infinity],
  ["NaN and Infinity nested", { n: [NaN, Infinity, -Infinity] }],
  ["a small BigInt", 5n],
  ["BigInt zero", 0n],
  ["a negative BigInt", -5n],
  ["BigInt 2**63 - 1", 2n ** 63n - 1n],
  ["BigInt 2**64", 2n ** 64n],
  ["BigInt -(2**70)", -(2n ** 70n)],
  ["BigInt 2**200", 2n ** 200n],
  ["a Date", new Date(Date.UTC(2024, 1, 29, 12, 34, 56, 789))],
  ["the epoch", new Date(0)],
  ["a Date before 1970", new Date(-1e12)],
  ["a RegExp with every flag", /a+b\d*/gimsuy],
  ["a RegExp with a slash", /a\/b[/]/],
  ["a Map with string keys", new Map<string, unknown>([["a", 1], ["b", [2]]])],
  ["a Map with non-string keys", new Map<unknown, unknown>([
    [1, "one"], ["1", "string one"], [true, "yes"], [null, "nil"], [undefined, "undef"], [NaN, "nan"],
    [{ k: 1 }, "object key"], [[1, 2], "array key"], [2n, "bigint key"], [new Date(5), "date key"],
  ])],
  ["an empty Map", new Map()],
  ["a Set", new Set<unknown>([1, "1", { a: 1 }, [1], null, undefined, 3n])],
  ["an empty Set", new Set()],
  ["a Uint8Array", new Uint8Array([0, 1, 127, 128, 255])],
  ["an empty Uint8Array", new Uint8Array(0)],
  ["a Uint8Array viewing part of a buffer", new Uint8Array([1, 2, 3, 4, 5]).subarray(1, 3)],
  ["an ArrayBuffer", new Uint8Array([9, 8, 7]).buffer],
  ["an empty ArrayBuffer", new ArrayBuffer(0)],
  ["a Uint8ClampedArray", new Uint8ClampedArray([0, 128, 255])],
  ["an Int8Array", new Int8Array([-128, 0, 127])],
  ["a Uint16Array", new Uint16Array([0, 65535])],
  ["an Int16Array", new Int16Array([-32768, 32767])],
  ["a Uint32Array", new Uint32Array([0, 2 ** 32 - 1])],
  ["an Int32Array", new Int32Array([-(2 ** 31), 2 ** 31 - 1])],
  ["a Float32Array", new Float32Array([1.5, -0, NaN, Infinity])],
  ["a Float64Array", new Float64Array([Math.PI, -0, NaN, -Infinity])],
  ["a Float64Array viewing part of a buffer", new Float64Array([1, 2, 3, 4]).subarray(2)],
  ["a BigInt64Array", new BigInt64Array([1n, -(2n ** 63n)])],
  ["a BigUint64Array", new BigUint64Array([0n, 2n ** 64n - 1n])],
  ["nested containers", {
    m: new Map<unknown, unknown>([["s", new Set<unknown>([new Date(1), /x/g, new Uint8Array([1])])], [1, [new Map([[2n, undefined]])]]]),
    list: [{ deep: [[[[{ bottom: 1n, buf: new Int16Array([-1]).buffer }]]]] }],
  }],
  ["60 levels of nesting", nest(60)],
];

/** toStrictEqual, plus the exact class (Buffer must not pass for Uint8Array, and so on). */
function expectExact(actual: unknown, expected: unknown, label: string) {
  expect(actual, label).toStrictEqual(expected);
  if (expected !== null && typeof expected === "object") {
    expect(Object.getPrototypeOf(actual), `${label}: its class`).toBe(Object.getPrototypeOf(expected));
  }
}

describe("values that round-trip exactly", () => {
  test("client → server: every value, in the local dict (through the peer) and the global dict", async () => {
    const { client, server, peer } = await connect("values");
    for (const [label, value] of VALUES) {
      client.dict.set(label, value);
      client.globals.dict.set(label, value);
    }
    for (const [label, value] of VALUES) expectExact(client.dict.get(label), value, `${label} (the writer's replica)`);
    await client.sync();
    await until(() => peer.dict.size === VALUES.length && server.dict.size === VALUES.length, { what: "every value on the server" });
    for (const [label, value] of VALUES) {
      expectExact(peer.dict.get(label), value, `${label} (local dict, read by the server)`);
      expectExact(server.dict.get(label), value, `${label} (global dict, read by the server)`);
    }
  });

  test("server → client: every value, in the local dict (written through the peer) and the global dict", async () => {
    const { client, server, peer } = await connect("values");
    for (const [label, value] of VALUES) {
      peer[label] = value;
      server[label] = value;
    }
    await server.sync();
    await until(() => client.dict.size === VALUES.length && client.globals.dict.size === VALUES.length, { what: "every value on the client" });
    for (const [label, value] of VALUES) {
      expectExact(client[label], value, `${label} (local dict, read by the client)`);
      expectExact(client.globals[label], value, `${label} (global dict, read by the client)`);
    }
    // A fresh snapshot decodes them the same way.
    const again = await open.client(client.space, "alice");
    for (const [label, value] of VALUES) expectExact(again.globals[label], value, `${label} (from a snapshot)`);
  });

  test("shared references and cycles are kept", async () => {
    const { client, peer } = await connect("values");
    const shared = { x: 1 };
    const bytes = new Uint8Array([1, 2]);
    const date = new Date(7);
    const map = new Map([[1, 2]]);
    client["shared"] = { a: shared, b: shared, list: [shared], bytes1: bytes, bytes2: bytes, d1: date, d2: date, m1: map, m2: map };
    const cycle: any = { name: "root" };
    cycle.self = cycle;
    cycle.list = [cycle, { back: cycle }];
    client["cycle"] = cycle;
    const array: any[] = [1];
    array.push(array);
    client["array cycle"] = array;
    const viaMap: any = { m: new Map() };
    viaMap.m.set("parent", viaMap);
    client["cycle through a Map"] = viaMap;
    const viaSet: any = { s: new Set() };
    viaSet.s.add(viaSet);
    client["cycle through a Set"] = viaSet;
    await client.sync();
    await until(() => peer.dict.has("cycle through a Set"), { what: "the values on the server" });

    for (const side of [client, peer]) {
      const s = side["shared"];
      expect(s.a).toStrictEqual({ x: 1 });
      expect(s.a).toBe(s.b);
      expect(s.list[0]).toBe(s.a);
      expect(s.bytes1).toStrictEqual(bytes);
      expect(s.bytes1).toBe(s.bytes2);
      expect(s.d1).toBe(s.d2);
      expect(s.m1).toBe(s.m2);
      const c = side["cycle"];
      expect(c.name).toBe("root");
      expect(c.self).toBe(c);
      expect(c.list[0]).toBe(c);
      expect(c.list[1].back).toBe(c);
      const a = side["array cycle"];
      expect(a[0]).toBe(1);
      expect(a[1]).toBe(a);
      const m = side["cycle through a Map"];
      expect(m.m).toBeInstanceOf(Map);
      expect(m.m.get("parent")).toBe(m);
      const st = side["cycle through a Set"];
      expect([...st.s][0]).toBe(st);
    }
  });

  test("a typed array read is a copy: changing it (or a change event's) changes neither the replica nor other readers", async () => {
    const { client, peer } = await connect("values");
    const seen: number[][] = [];
    // The first listener scribbles on its value; the second must still get the original.
    peer.on("change", ({ value }: ChangeEvent) => (value as { b: Uint8Array }).b.fill(0));
    peer.on("change", ({ value }: ChangeEvent) => seen.push([...(value as { b: Uint8Array }).b]));
    client["v"] = { b: new Uint8Array([1, 2, 3]), u: new Uint32Array([7, 8]) };
    const local = client["v"];
    local.b[0] = 99;
    local.u[0] = 99;
    expect([...client["v"].b]).toEqual([1, 2, 3]); // the writer's replica
    expect([...client["v"].u]).toEqual([7, 8]);
    await client.sync();
    await until(() => peer.dict.has("v"), { what: "the value on the server" });
    expect(seen).toEqual([[1, 2, 3]]);
    const remote = peer["v"];
    remote.b[1] = 99;
    remote.u[1] = 99;
    expect([...peer["v"].b]).toEqual([1, 2, 3]); // a replica that received it
    expect([...peer["v"].u]).toEqual([7, 8]);
    expect(peer.dict.toObject()).toStrictEqual({ v: { b: new Uint8Array([1, 2, 3]), u: new Uint32Array([7, 8]) } });
  });

  test("documented normalisations: -0 reads back as 0, a Node Buffer as a Uint8Array (on both sides)", async () => {
    const { client, peer } = await connect("values");
    client["minus zero"] = -0;
    client["buffer"] = Buffer.from([1, 2, 3]);
    await client.sync();
    await until(() => peer.dict.has("buffer"), { what: "the values on the server" });
    for (const side of [client, peer]) {
      expect(Object.is(side["minus zero"], 0)).toBe(true);
      expect(Object.getPrototypeOf(side["buffer"])).toBe(Uint8Array.prototype);
      expect([...side["buffer"]]).toEqual([1, 2, 3]);
    }
    // a plain Uint8Array stays exactly a Uint8Array
    client["bytes"] = new Uint8Array([4]);
    await client.sync();
    await until(() => peer.dict.has("bytes"), { what: "the bytes on the server" });
    expect(Object.getPrototypeOf(peer["bytes"])).toBe(Uint8Array.prototype);
  });
});

class Point {
  constructor(public x: number) {}
  norm() {
    return Math.abs(this.x);
  }
}

const REJECTED: [string, () => unknown, RegExp][] = [
  ["a function", () => function named() {}, /function/],
  ["an arrow function", () => () => 1, /function/],
  ["a symbol", () => Symbol("s"), /symbol/],
  ["a class instance with behaviour", () => new Point(1), /Point/],
  ["an Error", () => new Error("boom"), /Error/],
  ["a TypeError", () => new TypeError("boom"), /TypeError/],
  ["a WeakMap", () => new WeakMap(), /WeakMap/],
  ["a WeakSet", () => new WeakSet(), /WeakSet/],
  ["a Promise", () => Promise.resolve(1), /Promise/],
  ["a function in an array", () => [1, () => 1], /function/],
  ["a symbol deep in an object", () => ({ a: { b: [Symbol("deep")] } }), /symbol/],
  ["a function as a Map value", () => new Map([["k", () => 0]]), /function/],
  ["a symbol as a Map key", () => new Map([[Symbol("k"), 1]]), /symbol/],
  ["an Error in a Set", () => new Set([new Error("x")]), /Error/],
  ["a class instance as a property", () => ({ p: new Point(2) }), /Point/],
  ["a symbol-keyed property", () => ({ [Symbol("key")]: 1 }), /symbol/],
];

describe("values that are refused", () => {
  test("each is a TypeError naming the culprit where it is written, on every handle and write method; nothing is stored anywhere", async () => {
    const { client, server, peer } = await connect("values-bad");
    const pairs: [string, any, any][] = [["client", client, peer], ["client.globals", client.globals, server], ["server", server, client.globals], ["peer", peer, client]];
    const seen: string[] = [];
    for (const [, , other] of pairs) other.on("change", ({ key }: ChangeEvent) => seen.push(key));
    for (const [, h] of pairs) h.dict.set("existing", "old");

    for (const [name, h] of pairs) {
      for (const [label, make, culprit] of REJECTED) {
        const where = `${label} on ${name}`;
        expect(() => (h[label] = make()), `${where}: proxy set`).toThrow(TypeError);
        expect(() => (h[label] = make()), `${where}: proxy set`).toThrow(culprit);
        expect(() => h.dict.set(label, make()), `${where}: dict.set`).toThrow(TypeError);
        expect(() => h.dict.set("existing", make()), `${where}: overwriting`).toThrow(TypeError);
        expect(() => h.dict.update({ [`fine ${label}`]: 1, [label]: make() }), `${where}: update`).toThrow(TypeError);
        expect(() => h.dict.update(new Map([[label, make()]])), `${where}: update(Map)`).toThrow(TypeError);
        expect(() => h.dict.setdefault(label, make()), `${where}: setdefault`).toThrow(TypeError);
        expect(h.dict.has(label), `${where}: not in the writer's replica`).toBe(false);
        expect(h.dict.has(`fine ${label}`), `${where}: no part of the update applied`).toBe(false);
      }
      expect(h.dict.get("existing")).toBe("old");
      expect(h.dict.size).toBe(1);
    }

    // A marker written after the refused writes: once the other side has it,
    // it would have had anything sent before it.
    for (const [, h] of pairs) h.dict.set("marker", true);
    await Promise.all([client.sync(), server.sync()]);
    for (const [name, , other] of pairs) {
      await until(() => other.dict.has("marker"), { what: `the marker on the other side of ${name}` });
      expect(other.dict.toObject(), name).toStrictEqual({ existing: "old", marker: true });
    }
    expect(new Set(seen)).toEqual(new Set(["existing", "marker"]));

    // and a fresh snapshot of both dicts holds nothing else
    const fresh = await open.client(client.space, "alice");
    expect(fresh.dict.toObject()).toStrictEqual({ existing: "old", marker: true });
    expect(fresh.globals.dict.toObject()).toStrictEqual({ existing: "old", marker: true });
  });
});

describe("values the codec cannot carry as written are never silently changed", () => {
  // Each of these is either delivered exactly or refused with a TypeError
  // where it is written; what it must never be is stored in another shape.
  const selfMap = () => {
    const m = new Map<string, unknown>();
    m.set("me", m);
    return m;
  };
  const selfSet = () => {
    const s = new Set<unknown>();
    s.add(s);
    return s;
  };
  const mapArrayMap = () => {
    const m = new Map<string, unknown>();
    m.set("list", [m]);
    return m;
  };
  const setObjectSet = () => {
    const s = new Set<unknown>();
    s.add({ s });
    return s;
  };
  const CASES: [string, () => unknown, (read: any) => void][] = [
    ["a Map that contains itself", selfMap, (r) => expect(r.get("me")).toBe(r)],
    ["a Set that contains itself", selfSet, (r) => expect([...r][0]).toBe(r)],
    ["a Map that contains itself through an array", mapArrayMap, (r) => expect(r.get("list")[0]).toBe(r)],
    ["a Set that contains itself through an object", setObjectSet, (r) => expect([...r][0].s).toBe(r)],
    ["a Map nested in an object that contains itself", () => ({ inner: selfMap() }), (r) => expect(r.inner.get("me")).toBe(r.inner)],
    ["an object with an own __proto__ key", () => JSON.parse('{"__proto__": {"polluted": true}, "a": 1}'), (r) => {
      expect(Object.getPrototypeOf(r)).toBe(Object.prototype);
      expect(Object.keys(r)).toEqual(["__proto__", "a"]);
      expect(Object.getOwnPropertyDescriptor(r, "__proto__")?.value).toStrictEqual({ polluted: true });
    }],
    ["a string with a lone surrogate", () => "ab\uD800cd", (r) => expect(r).toBe("ab\uD800cd")],
    ["a lone surrogate in an object key", () => ({ "k\uDC00": 1 }), (r) => expect(Object.keys(r)).toEqual(["k\uDC00"])],
    ["a lone surrogate in a Map key", () => new Map([["\uD83D", 1]]), (r) => expect([...r.keys()]).toEqual(["\uD83D"])],
    ["a RegExp with a lone surrogate", () => new RegExp("a\uD800"), (r) => expect(r.source).toBe("a\uD800")],
  ];

  test.each(CASES)("%s", async (label, make, check) => {
    const { client, peer } = await connect("values-edge");
    let refused: unknown;
    try {
      client["value"] = make();
    } catch (error) {
      refused = error;
    }
    client["marker"] = true;
    await client.sync();
    await until(() => peer.dict.has("marker"), { what: "the marker on the server" });
    if (refused !== undefined) {
      expect(refused, label).toBeInstanceOf(TypeError);
      expect(client.dict.has("value")).toBe(false);
      expect(peer.dict.has("value")).toBe(false);
    } else {
      check(client["value"]);
      check(peer["value"]);
    }
  });
});

test("a dict key with a lone surrogate is refused with a TypeError, or reaches the other side as the same key", async () => {
  const { client, peer } = await connect("values-edge");
  const key = "key \uD800";
  let refused: unknown;
  try {
    client.dict.set(key, 1);
  } catch (error) {
    refused = error;
  }
  client["marker"] = true;
  await client.sync();
  await until(() => peer.dict.has("marker"), { what: "the marker on the server" });
  if (refused !== undefined) expect(refused).toBeInstanceOf(TypeError);
  // Either way both replicas hold the same keys.
  expect([...peer.dict.keys()].sort()).toEqual([...client.dict.keys()].sort());
});
