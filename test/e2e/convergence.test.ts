// Concurrent writers converge: several handles write the same keys in
// interleaved bursts (sets, deletes, updates, pops, the odd clear); after
// sync() on all, every replica shows what the object holds, and each
// replica's change events add up to what it shows.
import { describe, expect, test } from "vitest";
import type { ChangeEvent } from "sharevars";
import { handles } from "../helpers/handles.js";
import { uniqueSpace, until } from "../helpers/e2e.js";

const open = handles();

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
    for (const w of writers) expect(w.h.dict.toObject(), w.name).toStrictEqual(truth);
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
