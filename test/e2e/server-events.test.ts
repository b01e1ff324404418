// The server's view of its clients: connect and disconnect events, the list in
// order of first connection, and peers of clients that are offline.
import { expect, test } from "vitest";
import type { ClientPeer } from "sharevars";
import { handles } from "../helpers/handles.js";
import { uniqueSpace, until } from "../helpers/e2e.js";

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
