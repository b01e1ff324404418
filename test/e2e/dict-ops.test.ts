// Every dict operation on every handle kind — `client` (its local dict),
// `client.globals`, `server` (the global dict) and a client peer — through the
// proxy and through `.dict`, with the result checked on the other side.
import { inspect } from "node:util";
import { describe, expect, test } from "vitest";
import { CLIENT_RESERVED, GLOBALS_RESERVED, PEER_RESERVED, SERVER_RESERVED, type ChangeEvent } from "sharevars";
import { handles } from "../helpers/handles.js";
import { uniqueSpace, until } from "../helpers/e2e.js";

const open = handles();

/** The handle under test and a handle on the same dict from the other side. */
interface Pair {
  h: any;
  other: any;
}

// Reserved names as the README lists them.
const COMMON = ["then", "catch", "finally", "constructor", "prototype", "__proto__", "toJSON", "toString", "valueOf", "inspect",
  "hasOwnProperty", "isPrototypeOf", "propertyIsEnumerable", "toLocaleString"];
const RESERVED: Record<string, string[]> = {
  client: ["id", "space", "status", "dict", "globals", "pipes", "queues", "on", "off", "sync", "close", "send", "recv", "put", "get"],
  globals: ["dict", "on", "off", "sync", "put", "get", "queues"],
  server: ["space", "status", "clients", "dict", "queues", "on", "off", "sync", "close", "put", "get", "issueClientToken"],
  peer: ["id", "ready", "online", "dict", "pipes", "queues", "on", "off", "sync", "send", "recv", "put", "get"],
};

async function connect(space: string) {
  const client = await open.client(space, "alice");
  const server = await open.server(space);
  const peer = server.clients.get("alice");
  await peer.ready;
  return { client, server, peer };
}

const KINDS: [string, keyof typeof RESERVED, (space: string) => Promise<Pair>][] = [
  ["client (its local dict; the other side is its peer)", "client", async (space) => {
    const { client, peer } = await connect(space);
    return { h: client, other: peer };
  }],
  ["client.globals (the other side is the server)", "globals", async (space) => {
    const { client, server } = await connect(space);
    return { h: client.globals, other: server };
  }],
  ["server (the other side is client.globals)", "server", async (space) => {
    const { client, server } = await connect(space);
    return { h: server, other: client.globals };
  }],
  ["peer (the other side is the client)", "peer", async (space) => {
    const { client, peer } = await connect(space);
    return { h: peer, other: client };
  }],
];

/** Waits until `other` shows exactly what `h` shows, after `h`'s writes are durable. */
async function mirrored({ h, other }: Pair): Promise<void> {
  await h.sync();
  const expected = h.dict.toObject();
  await until(() => {
    expect(other.dict.toObject()).toStrictEqual(expected);
    return true;
  }, { what: "the other side to show the same dict" });
}

const byKey = (a: [string, unknown], b: [string, unknown]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

describe.each(KINDS)("dict operations on %s", (_label, kind, setup) => {
  test("proxy: get, set, delete, in, Object.keys, Object.entries, JSON.stringify", async () => {
    const pair = await setup(uniqueSpace("ops"));
    const { h, other } = pair;
    h["a"] = 1;
    h.b = { x: [1, 2] };
    h["with space"] = "s";
    expect(h["a"]).toBe(1);
    expect(h.b).toStrictEqual({ x: [1, 2] });
    expect(h["missing"]).toBeUndefined();
    expect("a" in h).toBe(true);
    expect("missing" in h).toBe(false);
    expect(Object.keys(h).sort()).toEqual(["a", "b", "with space"]);
    expect(Object.entries(h).sort(byKey)).toStrictEqual([["a", 1], ["b", { x: [1, 2] }], ["with space", "s"]]);
    expect(JSON.parse(JSON.stringify(h))).toStrictEqual({ a: 1, b: { x: [1, 2] }, "with space": "s" });
    // Node's console shows the dict (a peer, which client it is).
    expect(inspect(h)).toBe(kind === "peer" ? 'ClientPeer "alice" (online)' : inspect({ a: 1, b: { x: [1, 2] }, "with space": "s" }));

    // Values read are copies.
    h.b.x.push(3);
    expect(h.b).toStrictEqual({ x: [1, 2] });

    expect(delete h["a"]).toBe(true);
    expect(delete h["never there"]).toBe(true);
    expect("a" in h).toBe(false);
    expect(h["a"]).toBeUndefined();
    h["a"] = "again";
    delete h["with space"];
    await mirrored(pair);
    expect(other["a"]).toBe("again");
    expect(other.b).toStrictEqual({ x: [1, 2] });
    expect("with space" in other).toBe(false);
    expect(Object.keys(other).sort()).toEqual(["a", "b"]);
    expect(JSON.parse(JSON.stringify(other))).toStrictEqual({ a: "again", b: { x: [1, 2] } });

    // and the other way
    other["from the other side"] = [true];
    await until(() => h["from the other side"]?.[0] === true, { what: "the other side's write" });
    expect(Object.keys(h).sort()).toEqual(["a", "b", "from the other side"]);
  });

  test(".dict: get, set, has, delete, keys, values, entries, size, forEach, iteration, toObject, clear", async () => {
    const pair = await setup(uniqueSpace("ops"));
    const { h, other } = pair;
    const d = h.dict;
    expect(d.set("x", 1)).toBe(d);
    d.set("y", [2]).set("z", "three");
    expect(d.get("x")).toBe(1);
    expect(d.get("y")).toStrictEqual([2]);
    expect(d.get("nope")).toBeUndefined();
    expect(d.has("z")).toBe(true);
    expect(d.has("nope")).toBe(false);
    expect(d.size).toBe(3);
    expect([...d.keys()].sort()).toEqual(["x", "y", "z"]);
    expect([...d.values()]).toHaveLength(3);
    expect([...d.values()]).toEqual(expect.arrayContaining([1, [2], "three"]));
    expect([...d.entries()].sort(byKey)).toStrictEqual([["x", 1], ["y", [2]], ["z", "three"]]);
    expect([...d].sort(byKey)).toStrictEqual([["x", 1], ["y", [2]], ["z", "three"]]);
    const seen: unknown[] = [];
    d.forEach((value: unknown, key: string, dict: unknown) => seen.push([key, value, dict === d]));
    expect(seen.sort((a: any, b: any) => byKey(a, b))).toStrictEqual([["x", 1, true], ["y", [2], true], ["z", "three", true]]);
    const copy = d.toObject();
    expect(copy).toStrictEqual({ x: 1, y: [2], z: "three" });
    copy.y.push(3); // a copy
    expect(d.get("y")).toStrictEqual([2]);

    expect(d.delete("x")).toBe(true);
    expect(d.delete("x")).toBe(false);
    expect(d.size).toBe(2);
    await mirrored(pair);
    expect(other.dict.size).toBe(2);
    expect(other.dict.get("z")).toBe("three");

    d.clear();
    expect(d.size).toBe(0);
    expect([...d]).toEqual([]);
    await mirrored(pair);
    expect(other.dict.size).toBe(0);
    expect(Object.keys(other)).toEqual([]);
  });

  test(".dict.update with an object, a Map, pairs, and more keys than one 1,000-key batch", async () => {
    const pair = await setup(uniqueSpace("ops"));
    const { h, other } = pair;
    const d = h.dict;
    const bigSeen = new Set<string>();
    let bigEvents = 0;
    other.on("change", ({ key }: ChangeEvent) => {
      if (key.startsWith("big")) {
        bigEvents++;
        bigSeen.add(key);
      }
    });

    expect(d.update({ o1: 1, o2: { deep: [1] } })).toBe(d);
    d.update(new Map<string, unknown>([["m1", "a"], ["m2", new Map([[1, 2]])]]));
    d.update([["p1", true], ["p2", null]]);
    d.update({ o1: "replaced" });
    // What is not pairs is refused, as by a Map: a string is not read as
    // keys "a" and "b" with undefined values, nor a list of keys.
    for (const bad of ["ab", ["ab", "cd"], [["ok", 1], 2]]) {
      expect(() => d.update(bad)).toThrow(new TypeError("update takes [key, value] pairs"));
    }
    expect(d.toObject()).toStrictEqual({ o1: "replaced", o2: { deep: [1] }, m1: "a", m2: new Map([[1, 2]]), p1: true, p2: null });

    const big = Object.fromEntries(Array.from({ length: 2500 }, (_, i) => [`big${i}`, { i }]));
    d.update(big);
    expect(d.size).toBe(2506);
    await mirrored(pair);
    expect(other.dict.size).toBe(2506);
    expect(other.dict.get("big0")).toStrictEqual({ i: 0 });
    expect(other.dict.get("big2499")).toStrictEqual({ i: 2499 });
    expect(other.dict.get("m2")).toStrictEqual(new Map([[1, 2]]));
    expect(bigSeen.size).toBe(2500);
    expect(bigEvents).toBe(2500);
  });

  test(".dict.pop with and without a fallback, and setdefault", async () => {
    const pair = await setup(uniqueSpace("ops"));
    const { h, other } = pair;
    const d = h.dict;
    d.set("p", { v: 1 });
    expect(d.pop("p")).toStrictEqual({ v: 1 });
    expect(d.has("p")).toBe(false);
    expect(d.pop("p")).toBeUndefined();
    expect(d.pop("p", "fallback")).toBe("fallback");
    d.set("u", undefined);
    expect(d.pop("u", "fallback")).toBeUndefined(); // present, with the value undefined
    expect(d.has("u")).toBe(false);
    d.set("kept", 0);
    expect(d.pop("kept", 99)).toBe(0);

    expect(d.setdefault("s", [1])).toStrictEqual([1]);
    expect(d.setdefault("s", [2])).toStrictEqual([1]);
    expect(d.setdefault("n")).toBeUndefined();
    expect(d.has("n")).toBe(true);
    await mirrored(pair);
    expect(other.dict.get("s")).toStrictEqual([1]);
    expect(other.dict.has("n")).toBe(true);
    expect(other.dict.has("p")).toBe(false);
    expect(other.dict.has("u")).toBe(false);
    expect(other.dict.has("kept")).toBe(false);
    expect(other.dict.size).toBe(2);

    // pop of a key written by the other side
    other["theirs"] = "popped here";
    await until(() => h.dict.has("theirs"), { what: "the other side's key" });
    expect(h.dict.pop("theirs", "fallback")).toBe("popped here");
    await mirrored(pair);
    expect("theirs" in other).toBe(false);
  });

  test('on("change"): local and remote changes with key, value and deleted; off() stops them', async () => {
    const pair = await setup(uniqueSpace("ops"));
    const { h, other } = pair;
    const local: ChangeEvent[] = [];
    const remote: ChangeEvent[] = [];
    const onLocal = (event: ChangeEvent) => local.push(event);
    h.on("change", onLocal);
    const stopRemote = other.on("change", (event: ChangeEvent) => remote.push(event));

    h["k"] = 1;
    expect(local).toStrictEqual([{ key: "k", value: 1, deleted: false }]); // at once
    h["k"] = { n: 2 };
    delete h["k"];
    const written = [
      { key: "k", value: 1, deleted: false },
      { key: "k", value: { n: 2 }, deleted: false },
      { key: "k", value: undefined, deleted: true },
    ];
    expect(local).toStrictEqual(written);
    await until(() => remote.length >= 3, { what: "three changes on the other side" });
    expect(remote).toStrictEqual(written);

    // a change from the other side is an event here (and there)
    other["r"] = "from the other side";
    await until(() => local.length >= 4, { what: "the remote change here" });
    expect(local[3]).toStrictEqual({ key: "r", value: "from the other side", deleted: false });
    expect(remote[3]).toStrictEqual({ key: "r", value: "from the other side", deleted: false });
    local[3].value = "mutated"; // events carry copies
    expect(h["r"]).toBe("from the other side");

    // clear: a deletion for every key, on both sides
    h.dict.update({ a: 1, b: 2 });
    h.dict.clear();
    const cleared = local.slice(6).filter((e) => e.deleted).map((e) => e.key).sort();
    expect(cleared).toEqual(["a", "b", "r"]);
    await mirrored(pair);
    await until(() => remote.filter((e) => e.deleted).length >= 4, { what: "the deletions on the other side" });
    expect(remote.filter((e) => e.deleted).map((e) => e.key).sort()).toEqual(["a", "b", "k", "r"]);

    // off() and the unsubscribe function stop the events
    h.off("change", onLocal);
    stopRemote();
    const before = [local.length, remote.length];
    h["after off"] = 1;
    await mirrored(pair);
    expect([local.length, remote.length]).toEqual(before);
  });

  test("the exported set of reserved names is the README's list", () => {
    const exported = { client: CLIENT_RESERVED, globals: GLOBALS_RESERVED, server: SERVER_RESERVED, peer: PEER_RESERVED }[kind];
    const objectPrototypeOnly = ["hasOwnProperty", "isPrototypeOf", "propertyIsEnumerable", "toLocaleString"];
    expect(new Set(exported)).toEqual(new Set([...COMMON.filter((name) => !objectPrototypeOnly.includes(name)), ...RESERVED[kind]]));
  });

  test("reserved names: then is never a key, await is safe, assigning one throws TypeError, .dict reaches them", async () => {
    const pair = await setup(uniqueSpace("ops"));
    const { h, other } = pair;
    h.dict.set("then", "a key named then");
    expect(h.then).toBeUndefined();
    expect(await h).toBe(h);
    expect(h.dict.get("then")).toBe("a key named then");

    for (const name of [...COMMON, ...RESERVED[kind]]) {
      expect(() => (h[name] = 1), `assigning ${name}`).toThrow(TypeError);
      expect(() => delete h[name], `deleting ${name}`).toThrow(TypeError);
    }
    expect(() => (h[Symbol("s")] = 1)).toThrow(TypeError);

    // Every reserved name is still a key through .dict, and the member stays.
    const keys = [...COMMON, ...RESERVED[kind]];
    h.dict.update(keys.map((name) => [name, `key ${name}`] as [string, string]));
    for (const name of keys) expect(h.dict.get(name)).toBe(`key ${name}`);
    expect(typeof h.on).toBe("function");
    expect(typeof h.sync).toBe("function");
    expect(h.dict.get("__proto__")).toBe("key __proto__");
    expect(Object.getPrototypeOf(h)).not.toBe("key __proto__");
    expect(h.then).toBeUndefined();
    expect(await h).toBe(h);

    // Names that are neither members nor reserved are ordinary keys.
    h["size"] = 3;
    h["keys"] = "k";
    expect(h.dict.get("size")).toBe(3);
    expect(h["keys"]).toBe("k");

    await mirrored(pair);
    for (const name of keys) expect(other.dict.get(name)).toBe(`key ${name}`);
    expect(other.then).toBeUndefined();
    expect(await other).toBe(other);
    expect(other["size"]).toBe(3);
  });
});

test("a handle's reads before its snapshot: a peer's dict before `await peer.ready` throws NotReadyError", async () => {
  const space = uniqueSpace("ops");
  await open.client(space, "alice");
  const server = await open.server(space);
  const peer = server.clients.get("alice");
  const notReady = expect.objectContaining({ name: "NotReadyError", code: "NOT_READY" });
  expect(() => peer["x"]).toThrow(notReady);
  expect(() => Object.keys(peer)).toThrow(notReady);
  expect(() => JSON.stringify(peer)).toThrow(notReady); // not "{}", which reads as an empty dict
  expect(String(inspect(peer))).toBe('ClientPeer "alice" (online)'); // the console still shows it
  await peer.ready;
  expect(peer["x"]).toBeUndefined();
  expect(JSON.stringify(peer)).toBe("{}");
});
