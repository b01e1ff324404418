// Local pipes: a two-ended channel per (client, name); what one end sends,
// only the other end receives, in order.
import { describe, expect, test } from "vitest";
import { handles } from "../helpers/handles.js";
import { uniqueSpace, until } from "../helpers/e2e.js";

const open = handles();

describe("local pipes", () => {
  test("the seed conversation on the default pipe and a named pipe", async () => {
    const space = uniqueSpace("pipes");
    const client = await open.client(space, "alice");
    const server = await open.server(space);
    await until(() => server.clients.length === 1);
    const peer = server.clients[0];

    // client side
    await client.send("What's your name?");
    const reply = client.recv(); // holds on until the server sends something

    // server side
    expect(await peer.recv()).toBe("What's your name?");
    await peer.send("My name is Bruce.");
    expect(await reply).toBe("My name is Bruce.");

    // many pipes, by name
    await client.pipes["any_name"].send("How old are you?");
    const age = client.pipes["any_name"].recv({ timeout: 5000 });
    expect(await peer.pipes["any_name"].recv()).toBe("How old are you?");
    await peer.pipes["any_name"].send(25);
    expect(await age).toBe(25);
  });

  test("an end never receives what it sent itself, and order is kept", async () => {
    const space = uniqueSpace("pipes");
    const client = await open.client(space, "alice");
    const server = await open.server(space);
    const peer = server.clients.get("alice");
    for (let i = 0; i < 50; i++) await client.send(i);
    await expect(client.recv({ timeout: 0 })).rejects.toMatchObject({ name: "TimeoutError" });
    expect(await client.pipes["default"].size()).toBe(0);
    expect(await peer.pipes["default"].size()).toBe(50);
    const got = [];
    for (let i = 0; i < 50; i++) got.push(await peer.recv());
    expect(got).toEqual([...Array(50).keys()]);
  });

  test("the server sends to an offline client; it receives everything in order when it connects", async () => {
    const space = uniqueSpace("pipes");
    const server = await open.server(space);
    const peer = server.clients.get("bob");
    expect(peer.online).toBe(false);
    for (const word of ["one", "two", "three"]) await peer.send(word);
    const bob = await open.client(space, "bob");
    expect([await bob.recv(), await bob.recv(), await bob.recv()]).toEqual(["one", "two", "three"]);
  });

  test("a timed-out recv rejects with TimeoutError and swallows nothing", async () => {
    const space = uniqueSpace("pipes");
    const client = await open.client(space, "alice");
    const server = await open.server(space);
    const peer = server.clients.get("alice");
    const started = Date.now();
    await expect(client.recv({ timeout: 200 })).rejects.toMatchObject({ name: "TimeoutError", code: "TIMEOUT" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    await peer.send("late");
    expect(await client.recv({ timeout: 5000 })).toBe("late");
    // an aborted wait gives way to the next receiver too
    const controller = new AbortController();
    const aborted = client.recv({ signal: controller.signal });
    controller.abort(new Error("stop"));
    await expect(aborted).rejects.toThrow("stop");
    await peer.send("after abort");
    expect(await client.recv({ timeout: 5000 })).toBe("after abort");
  });

  test("pipes are private to their client", async () => {
    const space = uniqueSpace("pipes");
    const alice = await open.client(space, "alice");
    const bob = await open.client(space, "bob");
    const server = await open.server(space);
    await server.clients.get("alice").send("for alice");
    await expect(bob.recv({ timeout: 300 })).rejects.toMatchObject({ name: "TimeoutError" });
    expect(await alice.recv()).toBe("for alice");
  });
});
