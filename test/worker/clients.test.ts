// The space object's registry of its clients: each client gets its order at
// its first HELLO; a client seen before is only read at HELLO (its reply then
// waits for no commit) and its last_seen moves when it leaves.
import { runInDurableObject } from "cloudflare:test";
import { expect, test } from "vitest";
import { Msg } from "../../client/protocol.js";
import type { ClientsPage, SharedObject } from "../../worker/shared-object.js";
import type { SpaceObject } from "../../worker/space.js";
import { spaceTarget, type ReadyWire, type Stub } from "./objects.js";
import { until } from "./channels.js";

type ClientRow = {
  id: string;
  ord: number;
  first_seen: number;
  last_seen: number;
};

function rows(stub: Stub): Promise<ClientRow[]> {
  return runInDurableObject(stub, (_instance: SharedObject, state) =>
    state.storage.sql.exec<ClientRow>("SELECT id, ord, first_seen, last_seen FROM clients ORDER BY ord").toArray(),
  );
}

test("clients keep the order of their first HELLO; a known client's HELLO writes nothing; leaving moves last_seen", async () => {
  const target = spaceTarget();
  const server = await target.server();
  const alice = await target.client("alice");
  const bob = await target.client("bob");
  const first = await rows(target.stub);
  expect(first.map((r) => [r.id, r.ord])).toEqual([["alice", 1], ["bob", 2]]);
  await until(async () => server.frames.filter((f) => f[0] === Msg.CLIENT_ONLINE).length === 2, "the server heard of both");
  expect(server.frames.filter((f) => f[0] === Msg.CLIENT_ONLINE).map((f) => [f[1], f[2]])).toEqual([["alice", 1], ["bob", 2]]);

  // A second socket of alice: she is known, so nothing is written, and she was online already.
  const again = await target.client("alice");
  expect(await rows(target.stub)).toEqual(first);
  // The clients list shows an online client as seen now, whatever its row says.
  const before = Date.now();
  const listed = await runInDurableObject(target.stub, (instance: SharedObject) =>
    (instance as unknown as { httpClients(): (offset: number, limit: number) => ClientsPage }).httpClients()(0, 10));
  expect(listed.clients.map((c) => [c.id, c.online, c.order])).toEqual([["alice", true, 1], ["bob", true, 2]]);
  for (const c of listed.clients) expect(c.lastSeen).toBeGreaterThanOrEqual(before);

  alice.close();
  again.close();
  await until(async () => server.frames.some((f) => f[0] === Msg.CLIENT_OFFLINE && f[1] === "alice"), "the server heard alice leave");
  const left = await rows(target.stub);
  expect(left[0]).toMatchObject({ id: "alice", ord: 1, first_seen: first[0].first_seen });
  expect(left[0].last_seen).toBeGreaterThanOrEqual(first[0].last_seen);
  expect(left[1]).toEqual(first[1]);

  // Back later: still first in order, and the server hears it with that order.
  await target.client("alice");
  await until(async () => server.frames.filter((f) => f[0] === Msg.CLIENT_ONLINE).length === 3, "the server heard alice return");
  expect(server.frames.filter((f) => f[0] === Msg.CLIENT_ONLINE).at(-1)!.slice(1, 3)).toEqual(["alice", 1]);
  expect((await rows(target.stub)).map((r) => [r.id, r.ord])).toEqual([["alice", 1], ["bob", 2]]);
  bob.close();
});

test("a server's HELLO lists the online clients in order of first connection, not of their sockets", async () => {
  const target = spaceTarget();
  const watcher = await target.server();
  const zed = await target.client("zed"); // first seen: order 1
  zed.close();
  await until(async () => watcher.frames.some((f) => f[0] === Msg.CLIENT_OFFLINE && f[1] === "zed"), "zed left");
  await target.client("amy"); // order 2, online first
  await target.client("zed"); // online again, after amy
  await until(async () => watcher.frames.filter((f) => f[0] === Msg.CLIENT_ONLINE).length === 3, "both are online");
  const server = await target.server();
  const ids = (wire: ReadyWire) => wire.hello.result!.clients!.map((c) => c.slice(0, 2));
  expect(ids(server)).toEqual([["zed", 1], ["amy", 2]]);
  // Looked up a slice of ids at a time (one bound string is bounded), still in order.
  await target.client("bob");
  await runInDurableObject(target.stub, (object: SpaceObject) => void (object.onlineLookupSlice = 1));
  const again = await target.server();
  expect(ids(again)).toEqual([["zed", 1], ["amy", 2], ["bob", 3]]);
});

test("each stay online of a client has its own mark (since): kept while any of its sockets is open, new after it left", async () => {
  const target = spaceTarget();
  const watcher = await target.server();
  const since = async () => {
    const server = await target.server();
    const clients = server.hello.result!.clients!;
    server.close();
    return clients.find(([id]) => id === "alice")?.[2];
  };
  const first = await target.client("alice");
  const online = await watcher.waitFor((f) => f[0] === Msg.CLIENT_ONLINE && f[1] === "alice", "alice online");
  expect(typeof online[3]).toBe("string");
  expect(await since()).toBe(online[3]);
  // A second socket (another tab) joins her stay; the first closing does not end it.
  const second = await target.client("alice");
  first.close();
  await first.closed; // (the object had the close before the HELLO of since()'s socket)
  expect(await since()).toBe(online[3]);
  // She leaves and comes back: a new stay, a new mark.
  second.close();
  await watcher.waitFor((f) => f[0] === Msg.CLIENT_OFFLINE && f[1] === "alice", "alice offline");
  await target.client("alice");
  await until(async () => watcher.frames.filter((f) => f[0] === Msg.CLIENT_ONLINE).length === 2, "alice back");
  const back = await since();
  expect(back).toBeDefined();
  expect(back).not.toBe(online[3]);
  expect(watcher.frames.filter((f) => f[0] === Msg.CLIENT_ONLINE).at(-1)![3]).toBe(back);
});
