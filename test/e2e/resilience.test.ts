// Networks drop and workers restart: handles reconnect by themselves and
// nothing is lost — offline writes, waits, durable state.
import { randomBytes as nodeRandomBytes } from "node:crypto";
import { afterEach, describe, expect, test } from "vitest";
import { Client, Server } from "sharevars";
import { handles } from "../helpers/handles.js";
import { faultyLink, type FaultyLink } from "../helpers/proxy.js";
import { startWorker, SERVER_TOKEN, type LocalWorker } from "../helpers/worker.js";
import { uniqueSpace, until, workerUrl } from "../helpers/e2e.js";

const open = handles();
const randomBytes = (n: number) => new Uint8Array(nodeRandomBytes(n));
const links: FaultyLink[] = [];
const workers: LocalWorker[] = [];
afterEach(async () => {
  await Promise.all(links.splice(0).map((link) => link.close()));
  await Promise.all(workers.splice(0).map((worker) => worker.stop("SIGKILL")));
});

async function link() {
  const l = await faultyLink(workerUrl());
  links.push(l);
  return l;
}

/** Client "alice" of a new space through a faulty link, and the server with her peer ready. */
async function aliceThroughLink() {
  const space = uniqueSpace("resume");
  const l = await link();
  const client = await open.client(space, "alice", {}, l.url);
  const server = await open.server(space);
  const peer = server.clients.get("alice");
  await peer.ready;
  return { space, l, client, server, peer };
}

describe("reconnect and resume", () => {
  test("status goes connecting → open across an outage, and close() stops reconnecting", async () => {
    const space = uniqueSpace("resume");
    const l = await link();
    const client = await open.client(space, "alice", {}, l.url);
    const seen: string[] = [];
    client.on("status", (status) => seen.push(status));
    l.down();
    await until(() => client.status === "connecting", { what: "connecting" });
    l.up();
    await until(() => client.status === "open", { what: "open again" });
    await client.close();
    expect(client.status).toBe("closed");
    // Each change of the handle's status once (its two connections drop and come back one by one).
    expect(seen).toEqual(["connecting", "open", "closed"]);
  });

  test("what a status listener writes as the handle opens again is sent once (not also with the replayed requests)", async () => {
    const { l, client, server, peer } = await aliceThroughLink();
    // On both connections: the handle is open once the later of the two is, whichever that is.
    let opens = 0;
    client.on("status", (status) => {
      if (status !== "open") return;
      opens++;
      void client.globals.put(`global ${opens}`);
      void client.put(`local ${opens}`);
      client.globals["opens"] = opens;
    });
    for (let i = 0; i < 2; i++) {
      l.cut();
      await until(() => client.status === "connecting", { what: "the cut seen" });
      await until(() => client.status === "open", { what: "open again" });
    }
    await client.sync();
    expect(opens).toBe(2);
    expect(await server.queues["default"].size()).toBe(2);
    expect(await peer.queues["default"].size()).toBe(2);
    expect([await server.get({ timeout: 0 }), await server.get({ timeout: 0 })]).toEqual(["global 1", "global 2"]);
    expect(server["opens"]).toBe(2);
  });

  test("writes made while offline are kept and applied in order; sync() waits across the outage", async () => {
    const { l, client, server, peer } = await aliceThroughLink();
    const seenByServer: number[] = [];
    peer.on("change", ({ key, value }) => key === "counter" && seenByServer.push(value as number));

    l.down();
    await until(() => client.status === "connecting");
    for (let i = 1; i <= 50; i++) client["counter"] = i; // offline: visible locally at once
    client.globals["offline"] = "yes";
    expect(client["counter"]).toBe(50);
    const synced = client.sync();
    l.up();
    await synced;

    await until(() => peer["counter"] === 50, { what: "the offline writes on the server" });
    expect(seenByServer).toEqual([...Array(50).keys()].map((i) => i + 1)); // every write, in order
    // The global dict lives in another object: durable once sync() resolved, on the server's replica a moment later.
    await until(() => server["offline"] === "yes", { what: "the offline global write on the server" });
  });

  test("a get() waiting across a dropped connection still gets its item, once", async () => {
    const space = uniqueSpace("resume");
    const l = await link();
    const client = await open.client(space, "alice", {}, l.url);
    const server = await open.server(space);
    const waiting = client.globals.get();
    const waitingLocal = client.get();
    await client.globals.queues["default"].size(); // the GETs have reached the objects
    l.down();
    await until(() => client.status === "connecting");
    await server.put("while you were away");
    await server.clients.get("alice").put("local, while away");
    l.up();
    expect(await waiting).toBe("while you were away");
    expect(await waitingLocal).toBe("local, while away");
    await expect(server.get({ timeout: 0 })).rejects.toMatchObject({ name: "TimeoutError" });
  });

  test("a poll (timeout 0) offline rejects at once, asks nothing, and leaves the item for the next receive; a peer's first poll still asks the object", async () => {
    const space = uniqueSpace("offline-poll");
    const l = await link();
    const client = await open.client(space, "alice", {}, l.url);
    const server = await open.server(space);
    const peer = server.clients.get("alice");
    await peer.send("p");
    await client.put("q");
    l.down();
    await until(() => client.status === "connecting", { what: "the drop seen" });
    const outcome = (p: Promise<unknown>) => Promise.race([
      p.then((v) => ["resolved", v], (e: Error) => ["rejected", e.name]),
      new Promise((resolve) => setTimeout(() => resolve(["still waiting"]), 2000)),
    ]);
    const started = Date.now();
    expect(await outcome(client.get({ timeout: 0 }))).toEqual(["rejected", "TimeoutError"]);
    expect(await outcome(client.recv({ timeout: 0 }))).toEqual(["rejected", "TimeoutError"]);
    expect(Date.now() - started).toBeLessThan(1000);
    l.up();
    await until(() => client.status === "open", { what: "reconnected" });
    expect(await client.get({ timeout: 0 })).toBe("q");
    expect(await client.recv({ timeout: 0 })).toBe("p");
    // A peer not yet connected waits for its first connection: its poll is answered by the object.
    await client.put("r");
    const fresh = (await open.server(space)).clients.get("alice");
    expect(fresh.online).toBe(true);
    expect(await fresh.get({ timeout: 0 })).toBe("r");
  });

  test("resume sends only what changed since the replica's version, not a full snapshot", async () => {
    const { space, l, client, peer } = await aliceThroughLink();
    // Random bytes: WebSocket compression must not hide the size of a snapshot.
    peer.dict.update(Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`key${i}`, randomBytes(1000)])));
    await peer.sync();
    await until(() => client.dict.size === 300, { what: "the client replica" });

    // The size of a full snapshot, for comparison: a second client loads it through the proxy.
    const before = l.bytesDown;
    const other = await Client.connect(l.url, { space, id: "alice" });
    const fullSnapshot = l.bytesDown - before;
    await other.close({ flushTimeout: 0 });

    l.down();
    await until(() => client.status === "connecting");
    peer["key7"] = "changed while away";
    await peer.sync();
    const atReconnect = l.bytesDown;
    l.up();
    await until(() => client["key7"] === "changed while away", { what: "the change after resume" });
    await until(() => client.status === "open");
    const resumed = l.bytesDown - atReconnect;

    if (process.env.SHOW_BYTES) console.log({ fullSnapshot, resumed });
    expect(fullSnapshot).toBeGreaterThan(300 * 1000);
    expect(resumed).toBeLessThan(20_000); // handshakes and one changed key, on both sockets
    expect(client.dict.size).toBe(300);
  });
});

describe("hard restart", () => {
  test("killing the worker (SIGKILL) and starting it on the same state loses nothing; handles carry on", async () => {
    const first = await startWorker();
    workers.push(first);
    const space = uniqueSpace("restart");
    const client = await Client.connect(first.url, { space, id: "alice" });
    const server = await Server.connect(first.url, { space, token: SERVER_TOKEN });
    try {
      client["kept"] = { n: 1 };
      client.globals["global kept"] = [1, 2, 3];
      for (let i = 0; i < 20; i++) await client.globals.put(i);
      await client.send("in the pipe");
      await client.sync();
      const pending = server.clients.get("alice").recv(); // waits across the restart

      await first.stop("SIGKILL");
      await until(() => client.status === "connecting" && server.status === "connecting", { what: "both handles to notice" });
      client["written while down"] = true; // kept and sent after the restart

      const second = await startWorker({ persistTo: first.persistTo, port: first.port });
      workers.push(second);
      await until(() => client.status === "open" && server.status === "open", { timeout: 30_000, what: "both handles to reconnect" });
      await client.sync();

      expect(await pending).toBe("in the pipe");
      const peer = server.clients.get("alice");
      await peer.ready;
      expect(peer["kept"]).toEqual({ n: 1 });
      // durable once client.sync() resolved; on the peer's replica (resumed on its own socket) a moment later
      await until(() => peer["written while down"] === true, { what: "the write made while down, on the server" });
      expect(server["global kept"]).toEqual([1, 2, 3]);
      const items: number[] = [];
      for (let i = 0; i < 20; i++) items.push(await server.get({ timeout: 5000 }));
      expect(items).toEqual([...Array(20).keys()]);
    } finally {
      await client.close({ flushTimeout: 0 });
      await server.close({ flushTimeout: 0 });
    }
  });
});
