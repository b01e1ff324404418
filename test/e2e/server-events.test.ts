// The server's view of its clients: connect and disconnect events, the list in
// order of first connection, and peers of clients that are offline.
import { expect, test } from "vitest";
import { ClosedError, Server, type ClientPeer } from "sharevars";
import { handles } from "../helpers/handles.js";
import { faultyLink } from "../helpers/proxy.js";
import { SERVER_TOKEN, uniqueSpace, until, workerUrl } from "../helpers/e2e.js";

const open = handles();

test("server.on('connect' | 'disconnect'), server.clients by order of first connection, and offline peers", async () => {
  const space = uniqueSpace("events");
  const server = await open.server(space);
  const connected: string[] = [];
  const disconnected: string[] = [];
  server.on("connect", (peer: ClientPeer) => connected.push(peer.id));
  server.on("disconnect", (id: string) => disconnected.push(id));

  const alice = await open.client(space, "alice");
  await until(() => connected.length === 1, { what: "alice's connect event" });
  const bob = await open.client(space, "bob");
  await until(() => connected.length === 2, { what: "bob's connect event" });
  expect(connected).toEqual(["alice", "bob"]);
  expect(server.clients.length).toBe(2);
  expect([server.clients[0].id, server.clients[1].id]).toEqual(["alice", "bob"]);
  expect(server.clients.ids()).toEqual(["alice", "bob"]);
  expect([...server.clients].map((peer) => peer.id)).toEqual(["alice", "bob"]);
  expect(server.clients.map((peer, i) => `${i} ${peer.id}`)).toEqual(["0 alice", "1 bob"]);
  const each: string[] = [];
  server.clients.forEach((peer, i) => each.push(`${i} ${peer.id}`));
  expect(each).toEqual(["0 alice", "1 bob"]);
  expect(server.clients.filter((peer) => peer.id !== "alice").map((peer) => peer.id)).toEqual(["bob"]);
  expect(server.clients.find((peer) => peer.id === "bob")?.id).toBe("bob");
  expect([server.clients.some((peer) => peer.id === "bob"), server.clients.some((peer) => peer.id === "carol")]).toEqual([true, false]);

  alice["var1"] = 256;
  await alice.sync();
  await alice.close();
  await until(() => disconnected.length === 1, { what: "alice's disconnect event" });
  expect(disconnected).toEqual(["alice"]);
  expect(server.clients.ids()).toEqual(["bob"]);
  expect(server.clients[0].id).toBe("bob");

  // alice is offline, and still reachable by id: her dict and pipe wait for her
  const peer = server.clients.get("alice");
  expect(peer.online).toBe(false);
  await peer.ready;
  expect(peer["var1"]).toBe(256);
  await peer.send("while you were away");

  // she comes back: the same order as at first, one more connect event
  const back = await open.client(space, "alice");
  await until(() => connected.length === 3, { what: "alice's second connect event" });
  expect(connected).toEqual(["alice", "bob", "alice"]);
  expect(server.clients.ids()).toEqual(["alice", "bob"]);
  expect(peer.online).toBe(true);
  expect(await back.recv({ timeout: 5000 })).toBe("while you were away");
  void bob;
});

test("after server.close() a peer opens no connection: touched while it flushes or after it, its ready rejects", async () => {
  const space = uniqueSpace("events");
  const link = await faultyLink(workerUrl());
  try {
    const server = await Server.connect(link.url, { space, token: SERVER_TOKEN });
    const alice = server.clients.get("alice");
    await alice.ready;
    link.latency(300);
    alice["k"] = 1; // a write on its way: close() waits for it
    const closing = server.close();
    const bob = server.clients.get("bob"); // touched while close() flushes
    const bobReady = bob.ready;
    bobReady.catch(() => {});
    await closing;
    const carol = server.clients.get("carol"); // touched after close()
    await expect(carol.ready).rejects.toBeInstanceOf(ClosedError);
    await expect(bobReady).rejects.toBeInstanceOf(ClosedError);
    await new Promise((r) => setTimeout(r, 1000));
    expect(link.open).toBe(0);
  } finally {
    await link.close();
  }
});

test("a server that was away hears of a client that left and came back meanwhile (disconnect, then connect)", async () => {
  const space = uniqueSpace("events");
  const link = await faultyLink(workerUrl());
  try {
    const server = await Server.connect(link.url, { space, token: SERVER_TOKEN });
    const events: string[] = [];
    server.on("connect", (peer: ClientPeer) => events.push(`connect ${peer.id}`));
    server.on("disconnect", (id: string) => events.push(`disconnect ${id}`));
    const alice = await open.client(space, "alice");
    const bob = await open.client(space, "bob");
    await until(() => events.length === 2, { what: "both connect events" });
    link.down();
    await until(() => server.status === "connecting", { what: "the server away" });
    await alice.close(); // alice leaves and comes back (a new handle) while the server is away
    // (close() does not wait for the object to see it: were the new handle's HELLO
    // first, alice's stay would go on and there would be nothing to tell)
    const aliceOnline = async () => {
      const response = await fetch(`${workerUrl()}/v1/spaces/${space}/clients`, { headers: { authorization: `Bearer ${SERVER_TOKEN}` } });
      return ((await response.json()) as { clients: { id: string; online: boolean }[] }).clients.find((c) => c.id === "alice")?.online;
    };
    await until(async () => (await aliceOnline()) === false, { what: "the object to see alice leave" });
    await open.client(space, "alice");
    link.up();
    await until(() => server.status === "open", { what: "the server back" });
    await until(() => events.length === 4, { what: "alice's disconnect and connect", timeout: 3000 });
    expect(events).toEqual(["connect alice", "connect bob", "disconnect alice", "connect alice"]);
    expect(server.clients.ids()).toEqual(["alice", "bob"]);
    await server.close();
    void bob;
  } finally {
    await link.close();
  }
});

test("a peer whose first connection failed (touched during an outage) connects again on its next use", async () => {
  const space = uniqueSpace("events");
  const link = await faultyLink(workerUrl());
  try {
    const server = await Server.connect(link.url, { space, token: SERVER_TOKEN, connectTimeout: 1000 });
    link.down();
    await until(() => server.status === "connecting", { what: "the server away" });
    const bob = server.clients.get("bob");
    // Never connected: its connection gives up after connectTimeout, as a first connect does.
    await expect(bob.send("lost")).rejects.toBeInstanceOf(ClosedError);
    await expect(bob.ready).rejects.toBeInstanceOf(ClosedError);
    link.up();
    await until(() => server.status === "open", { what: "the server back" });
    // The same peer is usable again: it opens a new connection.
    expect(server.clients.get("bob")).toBe(bob);
    await bob.ready;
    bob["k"] = 1;
    await bob.send("after the outage");
    await bob.sync();
    const client = await open.client(space, "bob");
    expect(client["k"]).toBe(1);
    expect(await client.recv({ timeout: 5000 })).toBe("after the outage");
    await server.close();
  } finally {
    await link.close();
  }
});

test("the events a server that was away is told each see server.clients as if they had come live", async () => {
  const space = uniqueSpace("events");
  const link = await faultyLink(workerUrl());
  try {
    const server = await Server.connect(link.url, { space, token: SERVER_TOKEN });
    const events: string[] = [];
    server.on("connect", (peer: ClientPeer) => events.push(`connect ${peer.id} [${server.clients.ids()}] ${peer.online}`));
    server.on("disconnect", (id: string) => events.push(`disconnect ${id} [${server.clients.ids()}] ${server.clients.get(id).online}`));
    const alice = await open.client(space, "alice");
    const bob = await open.client(space, "bob");
    await until(() => events.length === 2, { what: "both connect events" });
    link.down();
    await until(() => server.status === "connecting", { what: "the server away" });
    // While the server is away: alice leaves and comes back, bob leaves, carol comes.
    await alice.close();
    await bob.close();
    const online = async () => {
      const response = await fetch(`${workerUrl()}/v1/spaces/${space}/clients`, { headers: { authorization: `Bearer ${SERVER_TOKEN}` } });
      return ((await response.json()) as { clients: { id: string; online: boolean }[] }).clients.filter((c) => c.online).length;
    };
    await until(async () => (await online()) === 0, { what: "the object to see alice and bob leave" });
    await open.client(space, "alice");
    await open.client(space, "carol");
    link.up();
    await until(() => events.length === 6, { what: "the four events of the reconnect", timeout: 5000 });
    expect(events).toEqual([
      "connect alice [alice] true",
      "connect bob [alice,bob] true",
      "disconnect alice [bob] false",
      "disconnect bob [] false",
      "connect alice [alice] true",
      "connect carol [alice,carol] true",
    ]);
    expect(server.clients.ids()).toEqual(["alice", "carol"]);
    await server.close();
  } finally {
    await link.close();
  }
});
