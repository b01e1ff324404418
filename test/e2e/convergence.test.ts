// Concurrent writers converge: several handles write the same keys in
// interleaved bursts (sets, deletes, updates, pops, the odd clear); after
// sync() on all, every replica shows what the object holds, its keys in the
// same order, and each replica's change events add up to what it shows.
import { afterEach, describe, expect, test } from "vitest";
import type { ChangeEvent } from "sharevars";
import { handles } from "../helpers/handles.js";
import { faultyLink, type FaultyLink } from "../helpers/proxy.js";
import { uniqueSpace, until, workerUrl } from "../helpers/e2e.js";

const open = handles();
const links: FaultyLink[] = [];
afterEach(async () => {
  await Promise.all(links.splice(0).map((link) => link.close()));
});

/** A small seeded generator, so that a failing run can be replayed. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Writer {
  name: string;
  /** A dict proxy: client, client.globals, server or a peer. */
  h: any;
}

/** Follows a replica through its change events only. */
function shadow(h: any): Map<string, unknown> {
  const seen = new Map<string, unknown>(Object.entries(h.dict.toObject()));
  h.on("change", ({ key, value, deleted }: ChangeEvent) => {
    if (deleted) seen.delete(key);
    else seen.set(key, value);
  });
  return seen;
}

const yieldToSockets = () => new Promise((resolve) => setImmediate(resolve));

/** Interleaved bursts of writes from every writer on the same few keys. */
async function bursts(writers: Writer[], seed: number, rounds: number): Promise<Set<string>> {
  const rnd = random(seed);
  const pick = <T>(items: T[]) => items[Math.floor(rnd() * items.length)];
  const keys = Array.from({ length: 8 }, (_, i) => `k${i}`);
  const written = new Set<string>();
  for (let round = 0; round < rounds; round++) {
    for (const writer of [...writers].sort(() => rnd() - 0.5)) {
      const d = writer.h.dict;
      const burst = 1 + Math.floor(rnd() * 6);
      for (let i = 0; i < burst; i++) {
        const tag = `${writer.name}/${round}/${i}`;
        const op = rnd();
        if (op < 0.45) {
          writer.h[pick(keys)] = tag;
          written.add(tag);
        } else if (op < 0.65) {
          delete writer.h[pick(keys)];
        } else if (op < 0.8) {
          const batch = Object.fromEntries(keys.filter(() => rnd() < 0.4).map((k) => [k, { tag, k }]));
          d.update(batch);
          written.add(tag);
        } else if (op < 0.88) {
          d.pop(pick(keys));
        } else if (op < 0.97) {
          d.setdefault(pick(keys), tag);
          written.add(tag);
        } else {
          d.clear();
        }
      }
      // Let replies and other writers' changes arrive between some bursts.
      if (rnd() < 0.5) await yieldToSockets();
      if (rnd() < 0.1) await writer.h.sync();
    }
  }
  // A last round that leaves keys which only a clear removes: one writer
  // clears while the others each write one key.
  const [clearer, ...others] = [...writers].sort(() => rnd() - 0.5);
  await Promise.all(writers.map((w) => w.h.sync()));
  clearer.h.dict.clear();
  others.forEach((w, i) => {
    w.h[`last${i}`] = `${w.name}/last`;
    written.add(`${w.name}/last`);
  });
  return written;
}

/** The tag a stored value carries. */
const tagOf = (value: any): string => (typeof value === "string" ? value : value.tag);

async function expectConverged(writers: Writer[], shadows: Map<string, unknown>[], authority: () => Promise<Record<string, unknown>>, written: Set<string>) {
  await Promise.all(writers.map((w) => w.h.sync()));
  const truth = await authority();
  if (process.env.SHOW_TRUTH) console.log(Object.keys(truth).length, "keys", JSON.stringify(truth).slice(0, 200));
  for (const value of Object.values(truth)) expect(written.has(tagOf(value)), `stored value ${JSON.stringify(value)}`).toBe(true);
  await until(() => {
    for (const w of writers) {
      expect(w.h.dict.toObject(), w.name).toStrictEqual(truth);
      // (toStrictEqual does not look at the order of an object's keys.)
      expect(Object.keys(w.h), `${w.name}'s key order`).toEqual(Object.keys(truth));
    }
    return true;
  }, { what: "every replica to show the object's contents" });
  writers.forEach((w, i) => expect(Object.fromEntries(shadows[i]), `${w.name}'s change events`).toStrictEqual(truth));
}

describe("concurrent writers converge", () => {
  test.each([1, 2, 3])("three clients and the server on the same global keys (seed %i)", async (seed) => {
    const space = uniqueSpace("converge-global");
    const clients = await Promise.all(["c1", "c2", "c3"].map((id) => open.client(space, id)));
    const server = await open.server(space);
    const writers: Writer[] = [...clients.map((c) => ({ name: c.id, h: c.globals })), { name: "server", h: server }];
    const shadows = writers.map((w) => shadow(w.h));
    const written = await bursts(writers, seed, 40);
    await expectConverged(writers, shadows, async () => {
      const reader = await open.client(space, "reader");
      return reader.globals.dict.toObject();
    }, written);
  });

  test.each([1, 2, 3])("a client, a second connection with its id and the server on the same local keys (seed %i)", async (seed) => {
    const space = uniqueSpace("converge-local");
    const alice = await open.client(space, "alice");
    const aliceAgain = await open.client(space, "alice"); // another tab of the same client
    const server = await open.server(space);
    const peer = server.clients.get("alice");
    await peer.ready;
    const writers: Writer[] = [{ name: "alice", h: alice }, { name: "alice again", h: aliceAgain }, { name: "peer", h: peer }];
    const shadows = writers.map((w) => shadow(w.h));
    const written = await bursts(writers, seed + 100, 40);
    await expectConverged(writers, shadows, async () => {
      const other = await open.server(space);
      const fresh = other.clients.get("alice");
      await fresh.ready;
      return fresh.dict.toObject();
    }, written);
  });
});

describe("every replica lists the keys in the object's order, the order they were added", () => {
  const keysOf = (h: any) => [...h.dict.keys()];

  test("a key deleted and set again goes last: on live replicas, a fresh one, and one that was away (its resume moves it)", async () => {
    const space = uniqueSpace("key-order");
    const link = await faultyLink(workerUrl());
    links.push(link);
    const server = await open.server(space);
    const watcher = await open.client(space, "watcher");
    const away = await open.client(space, "away", {}, link.url);
    for (const key of ["p", "q", "r"]) server[key] = key;
    await server.sync();
    await until(() => keysOf(away.globals).length === 3 && keysOf(watcher.globals).length === 3, { what: "the three keys everywhere" });

    link.down(); // "away" resumes from here, holding p first
    await until(() => away.status !== "open", { what: "the link to be cut" });
    delete server.p;
    server.p = "p again";
    server.q = "q again"; // in place
    await server.sync();
    expect(keysOf(server)).toEqual(["q", "r", "p"]);
    await until(() => watcher.globals.p === "p again" && watcher.globals.q === "q again", { what: "the watcher to see the writes" });
    expect(keysOf(watcher.globals)).toEqual(["q", "r", "p"]);
    const fresh = await open.client(space, "fresh");
    expect(keysOf(fresh.globals)).toEqual(["q", "r", "p"]);

    link.up();
    await until(() => away.globals.p === "p again" && away.globals.q === "q again", { what: "the resumed replica to catch up" });
    expect(keysOf(away.globals)).toEqual(["q", "r", "p"]);
    expect(Object.keys(away.globals)).toEqual(["q", "r", "p"]);
  });

  test("new keys written at once on two sides: each side lists its own last while it is pending, and then the object's order", async () => {
    const space = uniqueSpace("key-order-concurrent");
    const alice = await open.client(space, "alice");
    const server = await open.server(space);
    const peer = server.clients.get("alice");
    await peer.ready;
    alice.base = 0;
    await alice.sync();
    await until(() => peer.base === 0, { what: "the peer to see base" });
    // Both write before either hears of the other's write.
    alice.a1 = 1;
    alice.a2 = 2;
    peer.s1 = 1;
    expect(keysOf(alice)).toEqual(["base", "a1", "a2"]);
    expect(keysOf(peer)).toEqual(["base", "s1"]);
    await Promise.all([alice.sync(), peer.sync()]);
    await until(() => keysOf(alice).length === 4 && keysOf(peer).length === 4, { what: "both sides to see all four keys" });
    const other = await open.server(space);
    const truth = other.clients.get("alice");
    await truth.ready;
    const order = keysOf(truth);
    expect(order[0]).toBe("base");
    expect(keysOf(alice)).toEqual(order);
    expect(keysOf(peer)).toEqual(order);
    expect(Object.keys(alice.dict.toObject())).toEqual(order);
    expect([...alice.dict.values()]).toEqual(order.map((key) => truth.dict.get(key)));
  });
});

// The reply to a write and a later CHANGE can arrive in one chunk and be
// handled in one go (uncompressed: Node's WebSocket then dispatches them in
// one turn): the replica must take them in the object's order.
describe("a write's reply and a later change handled together", () => {
  const burst = async () => {
    const link = await faultyLink(workerUrl(), { compression: false });
    links.push(link);
    return link;
  };
  const settle = () => new Promise((r) => setTimeout(r, 300));

  test("a set, then someone else's set of the same key", async () => {
    const space = uniqueSpace("order");
    const link = await burst();
    const alice = await open.client(space, "alice", {}, link.url);
    const server = await open.server(space);
    link.hold();
    alice.globals["k"] = "from alice"; // applied first
    await settle();
    server["k"] = "from the server"; // applied second: the value
    await server.sync();
    link.release();
    await alice.globals.sync();
    await settle();
    expect(server["k"]).toBe("from the server");
    expect(alice.globals["k"]).toBe("from the server");
  });

  test("a clear, then someone else's set", async () => {
    const space = uniqueSpace("order");
    const link = await burst();
    const alice = await open.client(space, "alice", {}, link.url);
    const server = await open.server(space);
    server["a"] = 1;
    await server.sync();
    await until(() => alice.globals["a"] === 1);
    link.hold();
    alice.globals.dict.clear();
    await settle();
    server["b"] = 2;
    await server.sync();
    link.release();
    await alice.globals.sync();
    await settle();
    expect(server.dict.toObject()).toEqual({ b: 2 });
    expect(alice.globals.dict.toObject()).toEqual({ b: 2 });
  });
});

/** Alice through a link that can go down, and the server's peer of her, ready. */
async function aliceOnALinkWithPeer() {
  const space = uniqueSpace("listener");
  const link = await faultyLink(workerUrl());
  links.push(link);
  const alice = await open.client(space, "alice", {}, link.url);
  const peer = (await open.server(space)).clients.get("alice");
  await peer.ready;
  return { link, alice, peer };
}

describe("change listeners that write", () => {
  test("a key a listener derives during a resync is reported once", async () => {
    const { link, alice, peer } = await aliceOnALinkWithPeer();
    const mirrored: unknown[] = [];
    alice.on("change", ({ key, value }) => {
      if (key === "a") alice["mirror"] = `copy of ${value}`;
      if (key === "mirror") mirrored.push(value);
    });
    link.down();
    await until(() => alice.status === "connecting");
    peer["a"] = 1; // alice learns it from the snapshot of her reconnect
    await peer.sync();
    link.up();
    await until(() => alice["a"] === 1, { what: "resync" });
    await alice.sync();
    expect(alice["mirror"]).toBe("copy of 1");
    expect(mirrored).toEqual(["copy of 1"]);
  });

  test("a listener sees the whole of a remote update applied, whichever key it is told of first", async () => {
    const space = uniqueSpace("listener");
    const alice = await open.client(space, "alice");
    const server = await open.server(space);
    const seen: unknown[] = [];
    alice.globals.on("change", ({ key }) => key === "a" && seen.push([alice.globals["a"], alice.globals["b"]]));
    server.dict.update({ a: 1, b: 2 });
    await until(() => seen.length === 1);
    expect(seen).toEqual([[1, 2]]);
  });

  test("a listener that sets a key of the same update to the value it brings: that change is still reported", async () => {
    const space = uniqueSpace("listener");
    const alice = await open.client(space, "alice");
    const server = await open.server(space);
    const seen: unknown[] = [];
    alice.globals.on("change", ({ key, value }) => {
      seen.push([key, value]);
      if (key === "a") alice.globals["stamp"] = "same";
    });
    server.dict.update({ a: 1, stamp: "same" });
    await until(() => seen.length === 2);
    expect(seen).toEqual([["a", 1], ["stamp", "same"]]);
  });

  test("a listener that writes a key of the same update away and back: every change, in order", async () => {
    const space = uniqueSpace("listener");
    const alice = await open.client(space, "alice");
    const server = await open.server(space);
    const local: [string, unknown][] = [];
    alice.on("change", ({ key, value }) => {
      local.push([key, value]);
      if (key === "a" && value === 1) {
        alice["b"] = "Y";
        alice["b"] = 2;
      }
    });
    alice.dict.update({ a: 1, b: 2 });
    expect(local).toEqual([["a", 1], ["b", 2], ["b", "Y"], ["b", 2]]);
    // A remote update, two listeners: one writes b away, the next back.
    const remote: [string, unknown][] = [];
    alice.globals.on("change", ({ key, value }) => {
      remote.push([key, value]);
      if (key === "a" && value === 1) alice.globals["b"] = "Y";
    });
    alice.globals.on("change", ({ key, value }) => key === "a" && value === 1 && (alice.globals["b"] = 2));
    server.dict.update({ a: 1, b: 2 });
    await until(() => remote.length >= 1);
    await alice.globals.sync();
    expect(remote).toEqual([["a", 1], ["b", 2], ["b", "Y"], ["b", 2]]);
    // A clear: a listener sets b and deletes it again.
    const cleared: [string, unknown][] = [];
    alice.on("change", ({ key, value, deleted }) => {
      cleared.push([key, deleted ? "deleted" : value]);
      if (key === "a" && deleted) {
        alice["b"] = "Y";
        delete alice["b"];
      }
    });
    alice.dict.clear();
    expect(cleared).toEqual([["a", "deleted"], ["b", "deleted"], ["b", "Y"], ["b", "deleted"]]);
  });

  test("two listeners, the first writes the key again: the second sees every value in order", async () => {
    const alice = await open.client(uniqueSpace("listener"), "alice");
    alice.dict.on("change", ({ key, value }) => key === "k" && (value as number) < 3 && (alice["k"] = (value as number) + 1));
    const seen: unknown[] = [];
    alice.dict.on("change", ({ key, value }) => key === "k" && seen.push(value));
    alice["k"] = 1;
    expect(alice["k"]).toBe(3);
    expect(seen).toEqual([1, 2, 3]);
  });

  test("two listeners, the first rewrites a key of a reconnect's snapshot: the second's last report is the value", async () => {
    const { link, alice, peer } = await aliceOnALinkWithPeer();
    alice.dict.on("change", ({ key, value }) => key === "b" && value === "theirs" && (alice["b"] = "mine"));
    const seen: [string, unknown][] = [];
    alice.dict.on("change", ({ key, value }) => seen.push([key, value]));
    link.down();
    await until(() => alice.status === "connecting");
    peer.dict.update({ a: 1, b: "theirs" });
    await peer.sync();
    link.up();
    await until(() => alice["a"] === 1, { what: "resync" });
    await alice.sync();
    expect(alice["b"]).toBe("mine");
    expect(seen.filter(([k]) => k === "b")).toEqual([["b", "theirs"], ["b", "mine"]]);
  });

  test("an update naming a key twice that ends on its value reports no change", async () => {
    const alice = await open.client(uniqueSpace("listener"), "alice");
    alice["k"] = 0;
    const seen: unknown[] = [];
    alice.on("change", (change) => seen.push(change));
    alice.dict.update([["k", 1], ["k", 0]]);
    expect(alice["k"]).toBe(0);
    expect(seen).toEqual([]);
  });

  test("each listener gets a value of its own", async () => {
    const space = uniqueSpace("listener");
    const alice = await open.client(space, "alice");
    const server = await open.server(space);
    alice.on("change", ({ value }) => (value as number[]).push(99));
    const seen: unknown[] = [];
    alice.dict.on("change", ({ value }) => seen.push(structuredClone(value)));
    server.on("change", ({ value }) => (value as number[]).push(98));
    const serverSeen: unknown[] = [];
    server.dict.on("change", ({ value }) => serverSeen.push(structuredClone(value)));
    alice["list"] = [1];
    server["list"] = [2];
    await until(() => serverSeen.length === 1);
    expect([seen, serverSeen]).toEqual([[[1]], [[2]]]);
  });

  test("a listener that overwrites a key of the same update: the last report is the value", async () => {
    const space = uniqueSpace("listener");
    const alice = await open.client(space, "alice");
    const reports: [string, unknown][] = [];
    alice.on("change", ({ key, value }) => {
      reports.push([key, value]);
      if (key === "a" && value === 1) alice["b"] = "from the listener";
    });
    alice.dict.update({ a: 1, b: 2 });
    // The listener's write came after the update: it is the value of "b".
    expect(alice["b"]).toBe("from the listener");
    expect(reports.filter(([key]) => key === "b").at(-1)).toEqual(["b", "from the listener"]);
    await alice.sync();
    expect(alice["b"]).toBe("from the listener");
  });
});
