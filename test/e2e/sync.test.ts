// sync(): it resolves once every write so far is durable on the edge, and
// rejects with a typed error when the object refused one, which then
// disappears from the replica.
import { afterEach, describe, expect, test } from "vitest";
import { Client, ErrorCode, LimitError, Limits, Server, type ChangeEvent } from "sharevars";
import { handles } from "../helpers/handles.js";
import { startWorker, SERVER_TOKEN, type LocalWorker } from "../helpers/worker.js";
import { uniqueSpace, until } from "../helpers/e2e.js";

const open = handles();
const workers: LocalWorker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.stop("SIGKILL")));
});

async function worker(vars?: Record<string, string>, from?: LocalWorker) {
  const w = await startWorker({ vars, persistTo: from?.persistTo, port: from?.port });
  workers.push(w);
  return w;
}

describe("sync() and durability", () => {
  test("once sync() resolves, every write survives the worker being killed (SIGKILL) at once", async () => {
    const first = await worker();
    const space = uniqueSpace("sync-durable");
    const client = await Client.connect(first.url, { space, id: "alice" });
    const server = await Server.connect(first.url, { space, token: SERVER_TOKEN });
    const peer = server.clients.get("alice");
    await peer.ready;
    const expectedLocal: Record<string, unknown> = {};
    const expectedGlobal: Record<string, unknown> = {};
    try {
      for (let i = 0; i < 200; i++) client[`k${i}`] = expectedLocal[`k${i}`] = { i };
      for (let i = 0; i < 200; i += 7) {
        delete client[`k${i}`];
        delete expectedLocal[`k${i}`];
      }
      const many = Object.fromEntries(Array.from({ length: 2500 }, (_, i) => [`g${i}`, i]));
      client.globals.dict.update(many);
      Object.assign(expectedGlobal, many);
      peer["from the server"] = expectedLocal["from the server"] = "server";
      server["last"] = expectedGlobal["last"] = new Date(1);
      await Promise.all([client.sync(), server.sync()]);
    } finally {
      await first.stop("SIGKILL"); // nothing gets a chance to flush
      await client.close({ flushTimeout: 0 });
      await server.close({ flushTimeout: 0 });
    }

    const second = await worker(undefined, first);
    const fresh = await Client.connect(second.url, { space, id: "alice" });
    try {
      expect(fresh.dict.toObject()).toStrictEqual(expectedLocal);
      expect(fresh.globals.dict.toObject()).toStrictEqual(expectedGlobal);
    } finally {
      await fresh.close({ flushTimeout: 0 });
    }
  });

  test("after sync() a handle that connects anywhere sees the writes in its first snapshot", async () => {
    const space = uniqueSpace("sync-visible");
    const client = await open.client(space, "alice");
    for (let i = 0; i < 100; i++) {
      client[`n${i}`] = i;
      client.globals[`n${i}`] = -i;
    }
    await client.sync();
    const server = await open.server(space); // no waiting: the snapshot has them
    expect(server.dict.size).toBe(100);
    expect(server["n99"]).toBe(-99);
    const peer = server.clients.get("alice");
    await peer.ready;
    expect(peer.dict.size).toBe(100);
    expect(peer["n99"]).toBe(99);
    await expect(client.sync()).resolves.toBeUndefined(); // nothing pending
  });

  test("a key over the size limit is refused where it is written: nothing pending, sync() resolves, nothing stored", async () => {
    const space = uniqueSpace("sync-key");
    const client = await open.client(space, "alice");
    const key = "k".repeat(Limits.MAX_KEY_BYTES + 1);
    expect(() => (client[key] = 1)).toThrow(expect.objectContaining({ name: "LimitError", code: ErrorCode.KEY_TOO_LARGE }));
    expect(() => client.globals.dict.set(key, 1)).toThrow(expect.objectContaining({ code: ErrorCode.KEY_TOO_LARGE }));
    client["ok"] = 1;
    await expect(client.sync()).resolves.toBeUndefined();
    const server = await open.server(space);
    const peer = server.clients.get("alice");
    await peer.ready;
    expect(peer.dict.toObject()).toStrictEqual({ ok: 1 });
    expect(server.dict.size).toBe(0);
  });
});

describe("a write the object refuses", () => {
  // Two writers each add a key to a dict one key short of its limit, in the
  // same instant: each replica allows it, the object accepts only the first.
  test.each(["global", "local"] as const)("in the %s dict: sync() rejects with LimitError TOO_MANY_KEYS and the write disappears from the replica", async (which) => {
    const w = await worker({ LIMIT_MAX_KEYS_PER_DICT: "3" });
    const space = uniqueSpace("sync-refused");
    const alice = await Client.connect(w.url, { space, id: "alice" });
    const bob = await Client.connect(w.url, { space, id: "bob" });
    const server = await Server.connect(w.url, { space, token: SERVER_TOKEN });
    try {
      const peer = server.clients.get("alice");
      await peer.ready;
      // the two writers and every replica of the dict
      const [one, two]: any[] = which === "global" ? [alice.globals, bob.globals] : [alice, peer];
      const replicas: [string, any][] = which === "global"
        ? [["alice", alice.globals], ["bob", bob.globals], ["server", server]]
        : [["alice", alice], ["peer", peer]];

      one.dict.update({ k1: 1, k2: 2 });
      await one.sync();
      await until(() => replicas.every(([, r]) => r.dict.size === 2), { what: "two keys everywhere" });
      const events: ChangeEvent[][] = [[], []];
      one.on("change", (e: ChangeEvent) => events[0].push(e));
      two.on("change", (e: ChangeEvent) => events[1].push(e));

      one["third from one"] = "one";
      two["third from two"] = "two";
      expect(one["third from one"]).toBe("one"); // visible at once
      expect(two["third from two"]).toBe("two");
      const outcomes = await Promise.allSettled([one.sync(), two.sync()]);

      const refused = outcomes.findIndex((o) => o.status === "rejected");
      expect(outcomes.filter((o) => o.status === "rejected")).toHaveLength(1);
      const error = (outcomes[refused] as PromiseRejectedResult).reason;
      expect(error).toBeInstanceOf(LimitError);
      expect(error).toMatchObject({ name: "LimitError", code: ErrorCode.TOO_MANY_KEYS });

      const loser = refused === 0 ? one : two;
      const lostKey = refused === 0 ? "third from one" : "third from two";
      const keptKey = refused === 0 ? "third from two" : "third from one";
      // gone from the loser's replica by the time sync() rejects, with an event saying so
      expect(loser.dict.has(lostKey)).toBe(false);
      expect(events[refused]).toContainEqual({ key: lostKey, value: undefined, deleted: true });
      // the failure is reported once
      await expect(loser.sync()).resolves.toBeUndefined();

      const expected = { k1: 1, k2: 2, [keptKey]: refused === 0 ? "two" : "one" };
      await until(() => {
        for (const [name, r] of replicas) expect(r.dict.toObject(), name).toStrictEqual(expected);
        return true;
      }, { what: "every replica to show the accepted write only" });
      const fresh = await Client.connect(w.url, { space, id: "alice" });
      expect((which === "global" ? fresh.globals : fresh).dict.toObject()).toStrictEqual(expected);
      await fresh.close({ flushTimeout: 0 });
    } finally {
      await Promise.all([alice, bob, server].map((h) => h.close({ flushTimeout: 0 })));
    }
  });
});
