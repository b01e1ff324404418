// The local shared dict: one dict per client, shared by that client and the
// server only.
import { randomBytes as nodeRandomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import { Client, Server } from "sharevars";
import { SERVER_TOKEN, uniqueSpace, until, workerUrl } from "../helpers/e2e.js";
import { handles } from "../helpers/handles.js";

const open = handles();
const randomBytes = (n: number) => new Uint8Array(nodeRandomBytes(n));

describe("local shared dict", () => {
  test("the seed example: client sets var1, the server reads it and answers", async () => {
    const space = uniqueSpace("local");
    const client = await open.client(space, "alice");
    const server = await open.server(space);

    // client side
    client["var1"] = 256;

    // server side
    await until(() => server.clients.length === 1, { what: "the client to be listed" });
    const peer = server.clients[0];
    await peer.ready;
    await until(() => peer["var1"] === 256, { what: "var1 on the server" });
    expect(peer["var1"]).toBe(256);
    peer["var1"] = "Hello world!";

    // client side
    await until(() => client["var1"] === "Hello world!", { what: "the server's write on the client" });
    expect(client["var1"]).toBe("Hello world!");
  });

  test("a client's dict is private: another client never sees it by any API, the server sees each through its peer", async () => {
    const space = uniqueSpace("local-private");
    const alice = await open.client(space, "alice");
    const bob = await open.client(space, "bob");
    const bobSaw: string[] = [];
    bob.on("change", ({ key }) => bobSaw.push(key));
    bob.globals.on("change", ({ key }) => bobSaw.push(`globals:${key}`));

    alice["secret"] = "alice only";
    alice.dict.set("shared name", "alice's value");
    alice.dict.update({ a1: 1, a2: 2 });
    bob["shared name"] = "bob's value";
    await Promise.all([alice.sync(), bob.sync()]);

    // The server sees each dict through its own peer.
    const server = await open.server(space);
    const alicePeer = server.clients.get("alice");
    const bobPeer = server.clients.get("bob");
    await Promise.all([alicePeer.ready, bobPeer.ready]);
    expect(alicePeer.dict.toObject()).toStrictEqual({ secret: "alice only", "shared name": "alice's value", a1: 1, a2: 2 });
    expect(bobPeer.dict.toObject()).toStrictEqual({ "shared name": "bob's value" });

    // A write the server makes to alice's dict reaches alice, not bob; one to
    // bob's reaches bob. Waiting for bob's proves bob's replica is current.
    alicePeer["from server"] = "to alice";
    bobPeer["from server"] = "to bob";
    await until(() => alice["from server"] === "to alice", { what: "the server's write on alice" });
    await until(() => bob["from server"] === "to bob", { what: "the server's write on bob" });

    // Nothing of alice's through any of bob's APIs.
    for (const key of ["secret", "a1", "a2"]) {
      expect(bob[key]).toBeUndefined();
      expect(key in bob).toBe(false);
      expect(bob.dict.has(key)).toBe(false);
      expect(bob.dict.get(key)).toBeUndefined();
      expect(bob.globals[key]).toBeUndefined();
      expect(bob.globals.dict.has(key)).toBe(false);
    }
    expect(bob["shared name"]).toBe("bob's value");
    expect(Object.keys(bob).sort()).toEqual(["from server", "shared name"]);
    expect(Object.entries(bob).sort()).toEqual([["from server", "to bob"], ["shared name", "bob's value"]]);
    expect(JSON.parse(JSON.stringify(bob))).toEqual({ "shared name": "bob's value", "from server": "to bob" });
    expect([...bob.dict.values()].sort()).toEqual(["bob's value", "to bob"]);
    expect(bob.dict.size).toBe(2);
    expect(bob.globals.dict.size).toBe(0);
    expect(bobSaw.sort()).toEqual(["from server", "shared name"]);

    // A fresh connection as bob loads bob's dict only.
    const bobAgain = await open.client(space, "bob");
    expect(bobAgain.dict.toObject()).toStrictEqual({ "shared name": "bob's value", "from server": "to bob" });
    // And alice's dict is untouched by bob's write to the same key name.
    expect(alice["shared name"]).toBe("alice's value");
  });

  test("reconnecting with the same id finds the dict; the server reaches an offline client's dict", async () => {
    const space = uniqueSpace("local-reconnect");
    const first = await Client.connect(workerUrl(), { space, id: "alice" });
    first["kept"] = { n: 1, list: [1, 2, 3] };
    first.dict.update(Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, i])));
    first["gone"] = "soon deleted";
    delete first["gone"];
    await first.close(); // waits for the writes
    expect(first.status).toBe("closed");

    // The server, while alice is away.
    const server = await open.server(space);
    expect(server.clients.length).toBe(0);
    const peer = server.clients.get("alice");
    expect(peer.online).toBe(false);
    await peer.ready;
    expect(peer["kept"]).toStrictEqual({ n: 1, list: [1, 2, 3] });
    expect(peer.dict.size).toBe(51);
    expect("gone" in peer).toBe(false);
    peer["while away"] = "written by the server";
    delete peer["k49"];
    await peer.sync();

    // alice again: everything is there as soon as connect() resolves.
    const again = await open.client(space, "alice");
    expect(again["kept"]).toStrictEqual({ n: 1, list: [1, 2, 3] });
    expect(again["while away"]).toBe("written by the server");
    expect(again.dict.size).toBe(51); // kept, k0..k48, "while away"
    expect(again["k0"]).toBe(0);
    expect(again["k48"]).toBe(48);
    expect("k49" in again).toBe(false);
    expect("gone" in again).toBe(false);
    await until(() => peer.online, { what: "the peer to be online again" });
  });

  test("a dict over 5 MB (six values of about 1 MB) loads through Client.connect and on the server peer", async () => {
    const space = uniqueSpace("local-large");
    const writer = await open.client(space, "alice");
    // Random bytes, so that no compression shrinks the snapshot.
    const blobs = Array.from({ length: 6 }, () => randomBytes(1_000_000));
    blobs.forEach((blob, i) => (writer[`blob${i}`] = blob));
    writer.globals.dict.update(blobs.map((blob, i) => [`global blob${i}`, blob] as [string, Uint8Array]));
    writer["small"] = "next to the big ones";
    await writer.sync();
    await writer.close();

    const fresh = await open.client(space, "alice");
    expect(fresh.dict.size).toBe(7);
    blobs.forEach((blob, i) => expect(fresh[`blob${i}`]).toStrictEqual(blob));
    expect(fresh["small"]).toBe("next to the big ones");
    expect(fresh.globals.dict.size).toBe(6);
    blobs.forEach((blob, i) => expect(fresh.globals[`global blob${i}`]).toStrictEqual(blob));

    const server = await open.server(space);
    blobs.forEach((blob, i) => expect(server[`global blob${i}`]).toStrictEqual(blob));
    const peer = server.clients.get("alice");
    await peer.ready;
    expect(peer.dict.size).toBe(7);
    blobs.forEach((blob, i) => expect(peer[`blob${i}`]).toStrictEqual(blob));
  });
});
