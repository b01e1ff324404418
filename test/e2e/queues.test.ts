// Local queues (one FIFO per client and name, shared by the client and the
// server) and global queues (one FIFO per space and name, shared by all).
import { describe, expect, test } from "vitest";
import { Client } from "sharevars";
import { handles } from "../helpers/handles.js";
import { faultyLink } from "../helpers/proxy.js";
import { uniqueSpace, until, workerUrl } from "../helpers/e2e.js";

const open = handles();

describe("local queues", () => {
  test("the seed example", async () => {
    const space = uniqueSpace("queues");
    const client = await open.client(space, "alice");
    const server = await open.server(space);

    // client side
    await client.put("Send me a file: test.jpg");
    await client.queues["other_queue"].put("Call me in 5 minutes.");

    // server side
    await until(() => server.clients.length === 1);
    const peer = server.clients[0];
    expect(await peer.get()).toBe("Send me a file: test.jpg");
    await peer.put("No such file!");
    expect(await peer.queues["other_queue"].get()).toBe("Call me in 5 minutes.");
    await peer.queues["other_queue"].put("OK");

    // client side
    expect(await client.get()).toBe("No such file!");
    expect(await client.queues["other_queue"].get()).toBe("OK");
    expect(await client.queues["other_queue"].size()).toBe(0);
  });

  test("a client that gets may get its own item", async () => {
    const space = uniqueSpace("queues");
    const client = await open.client(space, "alice");
    await client.put({ mine: true });
    expect(await client.queues["default"].size()).toBe(1);
    expect(await client.get()).toEqual({ mine: true });
  });
});

describe("close", () => {
  test("close() right after put() and send(): both resolve, the items are stored", async () => {
    const space = uniqueSpace("queues-close");
    const client = await Client.connect(workerUrl(), { space, id: "alice" });
    const server = await open.server(space);
    const outcome = (p: Promise<unknown>) => p.then(() => "resolved", (e) => `rejected ${e.name}`);
    const put = outcome(client.put("job"));
    const sent = outcome(client.send("hello"));
    const global = outcome(client.globals.put("news"));
    await client.close();
    expect([await put, await sent, await global]).toEqual(["resolved", "resolved", "resolved"]);
    const peer = server.clients.get("alice");
    expect(await peer.queues["default"].size()).toBe(1);
    expect(await peer.recv({ timeout: 1000 })).toBe("hello");
    expect(await server.get({ timeout: 1000 })).toBe("news");
  });

  test("close() that does not wait for replies: those writes fail as OUTCOME_UNKNOWN (they may be stored), never as not made", async () => {
    const space = uniqueSpace("queues-close");
    const client = await Client.connect(workerUrl(), { space, id: "alice" });
    const server = await open.server(space);
    const outcome = (p: Promise<unknown>) => p.then(() => "resolved", (e) => `${e.name} ${e.code}`);
    const sends = Array.from({ length: 5 }, (_, i) => outcome(client.send(i)));
    client["k"] = 1;
    const sync = outcome(client.sync());
    await client.close({ flushTimeout: 0 });
    expect(await Promise.all(sends)).toEqual(Array(5).fill("SharevarsError OUTCOME_UNKNOWN"));
    expect(await sync).toBe("SharevarsError OUTCOME_UNKNOWN");
    // They were sent: the object stored them all.
    const peer = server.clients.get("alice");
    for (let i = 0; i < 5; i++) expect(await peer.recv({ timeout: 2000 })).toBe(i);
    await until(async () => (await peer.ready, peer["k"] === 1), { what: "the dict write stored" });
  });
});

describe("close: what its writes tell", () => {
  const outcome = (p: Promise<unknown>) => p.then(() => "resolved", (e) => `${e.name} ${e.code}`);

  test("a dict write close() cut off is told by the next sync() (close() does not take its failure)", async () => {
    const link = await faultyLink(workerUrl());
    try {
      const client = await Client.connect(link.url, { space: uniqueSpace("queues-close"), id: "alice" });
      link.latency(300);
      client["k"] = 1; // a dict write has no promise of its own: sync() is its only report
      await client.close({ flushTimeout: 0 });
      expect(await outcome(client.sync())).toBe("SharevarsError OUTCOME_UNKNOWN");
      expect(await outcome(client.sync())).toBe("resolved"); // told once
    } finally {
      await link.close();
    }
  });

  test("once close() began, new writes and receives are refused with ClosedError; the writes made before it are still waited for", async () => {
    const link = await faultyLink(workerUrl());
    try {
      const space = uniqueSpace("queues-closing");
      const client = await Client.connect(link.url, { space, id: "alice" });
      link.latency(200);
      const before = outcome(client.send("before"));
      const closing = client.close();
      expect(() => {
        client["late"] = 1;
      }).toThrow(expect.objectContaining({ name: "ClosedError" }));
      expect(await outcome(client.send("late"))).toBe("ClosedError CLOSED");
      expect(await outcome(client.recv())).toBe("ClosedError CLOSED");
      expect(await outcome(client.globals.put("late"))).toBe("ClosedError CLOSED");
      await closing;
      expect(await before).toBe("resolved");
      // Only what came before close() was stored.
      const server = await open.server(space);
      const peer = server.clients.get("alice");
      expect(await peer.recv({ timeout: 2000 })).toBe("before");
      await expect(peer.recv({ timeout: 300 })).rejects.toMatchObject({ name: "TimeoutError" });
      expect(await server.queues["default"].size()).toBe(0);
      await peer.ready;
      expect("late" in peer).toBe(false);
    } finally {
      await link.close();
    }
  });

  test("a write made while reconnecting was never sent: close() fails it with ClosedError, not OUTCOME_UNKNOWN", async () => {
    const link = await faultyLink(workerUrl());
    try {
      const client = await Client.connect(link.url, { space: uniqueSpace("queues-close"), id: "alice" });
      link.latency(300);
      const inFlight = outcome(client.send("sent")); // leaves now; its reply is lost with the link
      await new Promise((r) => setTimeout(r, 50));
      link.down();
      await until(() => client.status === "connecting", { what: "the drop" });
      const never = outcome(client.send("never sent"));
      client["k"] = 1;
      await client.close({ flushTimeout: 0 });
      expect(await inFlight).toBe("SharevarsError OUTCOME_UNKNOWN");
      expect(await never).toBe("ClosedError CLOSED");
      expect(await outcome(client.sync())).toBe("ClosedError CLOSED");
    } finally {
      await link.close();
    }
  });
});

describe("global queues", () => {
  test("the seed example with two clients and the server", async () => {
    const space = uniqueSpace("global-queues");
    const client1 = await open.client(space, "one");
    const client2 = await open.client(space, "two");
    const server = await open.server(space);

    // client computer 1
    await client1.globals.put({ type: "request" });
    await client1.globals.queues["news"].put({ title: "Super man died", body: "..." });

    // client computer 2
    expect(await client2.globals.get()).toEqual({ type: "request" });
    await client2.globals.put({ type: "respond" });
    await client2.globals.queues["news"].put([0, 1, 2]);

    // server computer
    expect(await server.get()).toEqual({ type: "respond" });
    expect(await server.queues["news"].get()).toEqual({ title: "Super man died", body: "..." });
    expect(await server.queues["news"].get()).toEqual([0, 1, 2]);
  });

  test("waiting getters are served first come, first served, each item to exactly one", async () => {
    const space = uniqueSpace("global-queues");
    const getters = await Promise.all(["a", "b", "c"].map((id) => open.client(space, id)));
    const server = await open.server(space);
    // One getter after the other: a SIZE round trip on the same socket proves its GET arrived first.
    const waiting = [];
    for (const getter of getters) {
      waiting.push(getter.globals.get());
      await getter.globals.queues["default"].size();
    }
    for (const n of [1, 2, 3]) await server.put(n);
    expect(await Promise.all(waiting)).toEqual([1, 2, 3]);
  });
});
