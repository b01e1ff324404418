// Local pipes: a two-ended channel per (client, name); what one end sends,
// only the other end receives, in order.
import { describe, expect, test } from "vitest";
import { Client, Server } from "sharevars";
import { handles } from "../helpers/handles.js";
import { SERVER_TOKEN, uniqueSpace, until, workerUrl } from "../helpers/e2e.js";
import { faultyLink, type FaultyLink } from "../helpers/proxy.js";

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

/** A pipe direction of one client's object as the inspector summary shows it. */
async function pipeState(space: string, id: string, fifo: string): Promise<{ waiting: number; delivered: number; receivers: number }> {
  const response = await fetch(`${workerUrl()}/v1/spaces/${space}/summary`, { headers: { authorization: `Bearer ${SERVER_TOKEN}` } });
  const summary = (await response.json()) as { clients: { id: string; summary: { channels: { fifo: string; waiting: number; delivered: number; receivers: number }[] } }[] };
  const channel = summary.clients.find((c) => c.id === id)?.summary.channels.find((c) => c.fifo === fifo);
  return { waiting: channel?.waiting ?? 0, delivered: channel?.delivered ?? 0, receivers: channel?.receivers ?? 0 };
}

/** alice's pipe to the server's peer, after alice received one item: her next receive is on its way ahead. */
/** `url`: where the client connects (a faulty link's), by default the worker itself. */
async function afterOneItem(url?: string) {
  const space = uniqueSpace("ahead");
  const client = await open.client(space, "alice", {}, url);
  const server = await open.server(space);
  const peer = server.clients.get("alice");
  const state = () => pipeState(space, "alice", "pipe:down:default");
  // Before any recv, nothing waits at the object for the client.
  await peer.send("a");
  expect(await state()).toEqual({ waiting: 1, delivered: 0, receivers: 0 });
  expect(await client.recv()).toBe("a");
  // The next receive leaves with the acknowledgement of "a".
  await until(async () => (await state()).receivers === 1, { what: "the receive sent ahead" });
  return { space, client, peer, state };
}

describe("a pipe end receives ahead", () => {
  test("after a recv the next receive is already waiting; an item sent meanwhile waits in the handle, and size() counts it", async () => {
    const { client, peer, state } = await afterOneItem();
    await peer.send("b");
    await until(async () => (await state()).delivered === 1, { what: "b delivered to the handle" });
    expect(await client.pipes["default"].size()).toBe(1);
    expect(await client.recv({ timeout: 0 })).toBe("b"); // a poll takes the item in hand
    expect(await client.pipes["default"].size()).toBe(0);
    // "b" was acknowledged: nothing is left but the next receive.
    await until(async () => {
      const now = await state();
      return now.delivered === 0 && now.waiting === 0 && now.receivers === 1;
    }, { what: "b acknowledged" });
  });

  test("close() hands an item in hand back at once, for the next receiver", async () => {
    const { space, client: first, peer, state } = await afterOneItem();
    await peer.send("b");
    await until(async () => (await state()).delivered === 1, { what: "b delivered to the first handle" });
    await first.close();
    // Without the hand-back, "b" would stay held for the closed handle's session for 20 s.
    const second = await open.client(space, "alice");
    const started = Date.now();
    expect(await second.recv({ timeout: 5000 })).toBe("b");
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test("close() while an item is on its way to the receive ahead: it goes back at once, not held for the closed handle", async () => {
    const link = await faultyLink(workerUrl());
    try {
      const { space, client: first, peer, state } = await afterOneItem(link.url);
      link.latency(300); // a slow link: "b" is still on its way when the handle closes
      await peer.send("b"); // stored, and leased to the receive ahead
      expect(await state()).toMatchObject({ delivered: 1, receivers: 0 });
      await first.close({ flushTimeout: 0 });
      // The closed handle's session never comes back: once the object sees the
      // close, "b" is back in line for the next receiver (not held for 20 s,
      // while later items pass it by).
      await until(async () => (await state()).delivered === 0, { timeout: 5000, what: "b back in line" });
      const second = await open.client(space, "alice");
      await peer.send("c");
      expect(await second.recv({ timeout: 5000 })).toBe("b");
      expect(await second.recv({ timeout: 5000 })).toBe("c");
    } finally {
      await link.close();
    }
  });

  test("a recv that times out stops receiving ahead: the next item stays at the object", async () => {
    const { client, peer, state } = await afterOneItem();
    await expect(client.recv({ timeout: 100 })).rejects.toMatchObject({ name: "TimeoutError" });
    await until(async () => (await state()).receivers === 0, { what: "the receive cancelled" });
    await peer.send("b");
    await new Promise((r) => setTimeout(r, 300));
    expect(await state()).toEqual({ waiting: 1, delivered: 0, receivers: 0 });
    expect(await client.recv({ timeout: 5000 })).toBe("b");
  });

  test("a poll with the receive ahead still waiting asks the object: empty, it rejects and nothing waits any more", async () => {
    const { client, peer, state } = await afterOneItem();
    await expect(client.recv({ timeout: 0 })).rejects.toMatchObject({ name: "TimeoutError", message: expect.stringContaining("is empty") });
    await until(async () => (await state()).receivers === 0, { what: "the receive cancelled" });
    await peer.send("b");
    expect(await client.recv({ timeout: 0 })).toBe("b");
  });

  test("recv() and close() in the same turn: the item in hand is the recv's, not handed back as well", async () => {
    const { space, client, peer, state } = await afterOneItem();
    await peer.send("b");
    await until(async () => (await state()).delivered === 1, { what: "b delivered to the handle" });
    const received = client.recv();
    await client.close({ flushTimeout: 0 });
    expect(await received).toBe("b");
    const next = await open.client(space, "alice");
    await expect(next.recv({ timeout: 500 })).rejects.toMatchObject({ name: "TimeoutError" });
  });

  test("an item in hand when the connection drops stays the session's at the object: the next recv gets it there, once", async () => {
    const link = await faultyLink(workerUrl());
    try {
      const space = uniqueSpace("ahead");
      const server = await open.server(space);
      const peer = server.clients.get("alice");
      const client = await open.client(space, "alice", {}, link.url);
      await peer.send("1");
      expect(await client.recv()).toBe("1");
      await peer.send("2");
      await until(async () => (await client.pipes["default"].size()) === 1, { what: "2 in hand" });
      link.cut();
      await until(() => client.status === "connecting", { what: "the cut seen" });
      await until(() => client.status === "open", { what: "reconnected" });
      // The copy in hand came on the old socket: the object held "2" for this session instead.
      expect(await client.pipes["default"].size()).toBe(0);
      expect(await client.recv({ timeout: 5000 })).toBe("2");
      await until(async () => {
        const now = await pipeState(space, "alice", "pipe:down:default");
        return now.delivered === 0 && now.waiting === 0;
      }, { what: "2 acknowledged" });
    } finally {
      await link.close();
    }
  });

  test("a recv that times out offline while the receive ahead is on its way: the item it brings back keeps its place", async () => {
    // The receive ahead waits at the object; the link drops; items arrive;
    // a recv with a timeout gives up at once (offline) and the next recv
    // waits. Once back, the replayed receive ahead brings "b": it must reach
    // the next recv before "c", not go back in line behind it.
    const link = await faultyLink(workerUrl());
    try {
      const { client, peer, state } = await afterOneItem(link.url);
      link.down();
      await until(() => client.status === "connecting", { what: "the drop seen" });
      await until(async () => (await state()).receivers === 0, { what: "the object to see the drop" });
      await peer.send("b");
      await peer.send("c");
      await expect(client.recv({ timeout: 10 })).rejects.toMatchObject({ name: "TimeoutError" });
      const next = client.recv({ timeout: 5000 });
      link.up();
      expect(await next).toBe("b");
      expect(await client.recv({ timeout: 5000 })).toBe("c");
    } finally {
      await link.close();
    }
  });

  test("a receive ahead that no recv() takes within a second is withdrawn: a second handle of the same end gets the item", async () => {
    const { space, client, peer, state } = await afterOneItem();
    await peer.send("2");
    await until(async () => (await state()).delivered === 1, { what: "2 in the first handle's hand" });
    const second = await open.client(space, "alice");
    const started = Date.now();
    expect(await second.recv({ timeout: 5000 })).toBe("2");
    expect(Date.now() - started).toBeLessThan(4000);
    expect(await client.pipes["default"].size()).toBe(0);
  });

  test("queues do not get ahead: an item goes to whichever getter asks", async () => {
    const space = uniqueSpace("ahead");
    const client = await open.client(space, "alice");
    await client.put("a");
    expect(await client.get()).toBe("a");
    await new Promise((r) => setTimeout(r, 300));
    expect(await pipeState(space, "alice", "queue:default")).toEqual({ waiting: 0, delivered: 0, receivers: 0 });
  });

  test("a conversation in a loop keeps order and loses nothing", async () => {
    const space = uniqueSpace("ahead");
    const client = await open.client(space, "alice");
    const server = await open.server(space);
    const peer = server.clients.get("alice");
    const echo = (async () => {
      for (;;) {
        const x = await peer.recv();
        await peer.send(x);
        if (x === 199) return;
      }
    })();
    const got: number[] = [];
    for (let i = 0; i < 200; i++) {
      await client.send(i);
      got.push(await client.recv());
    }
    await echo;
    expect(got).toEqual([...Array(200).keys()]);
    expect(await client.pipes["default"].size()).toBe(0);
    expect(await peer.pipes["default"].size()).toBe(0);
  });
});

describe("delays users give", () => {
  test("a timeout of Infinity, or longer than setTimeout can wait (2^31 ms), waits: it does not fire at once", async () => {
    const space = uniqueSpace("pipes");
    const client = await open.client(space, "alice");
    const server = await open.server(space);
    // connectTimeout: Infinity means no limit (it used to fail the connect after 1 ms)
    expect((await open.client(space, "carol", { connectTimeout: Infinity })).status).toBe("open");
    const peer = server.clients.get("alice");
    const settled = (p: Promise<unknown>) => p.then(() => "settled", (e) => `rejected: ${e?.name}`);
    const waits = [
      client.recv({ timeout: Infinity }),
      client.pipes["long"].recv({ timeout: 2 ** 31 }),
      client.globals.get({ timeout: 1e12 }),
      peer.get({ timeout: Infinity }),
    ];
    const outcomes = waits.map(settled);
    await new Promise((r) => setTimeout(r, 300));
    await peer.send("a");
    await peer.pipes["long"].send("b");
    await server.put("c");
    await client.put("d");
    expect(await Promise.all(waits)).toEqual(["a", "b", "c", "d"]);
    expect(await Promise.all(outcomes)).toEqual(["settled", "settled", "settled", "settled"]);
    // and a close that may wait for ever still waits for its writes
    client["k"] = 1;
    const sent = client.send("last");
    await client.close({ flushTimeout: Infinity });
    await sent;
    await until(() => peer["k"] === 1, { what: "the write to reach the server" });
    expect(await peer.recv({ timeout: 5000 })).toBe("last");
  });

  test("a delay that is not a number >= 0 is a TypeError at the call", async () => {
    const space = uniqueSpace("pipes");
    const client = await open.client(space, "alice");
    const server = await open.server(space);
    for (const timeout of [-1, NaN, "100"] as unknown as number[]) {
      await expect(client.recv({ timeout })).rejects.toThrow(TypeError);
      await expect(Client.connect(workerUrl(), { space, id: "bob", connectTimeout: timeout })).rejects.toThrow(/connectTimeout is a number of milliseconds/);
      // with a token function too, which is not called (it used to be, and a -1 then failed as its timeout, a ClosedError)
      let asked = 0;
      const token = () => (asked++, new Promise<string>((resolve) => setTimeout(() => resolve("not a token"), 50)));
      await expect(Client.connect(workerUrl(), { space, token, connectTimeout: timeout })).rejects.toThrow(/connectTimeout is a number of milliseconds/);
      expect(asked).toBe(0);
      await expect(Server.connect(workerUrl(), { space, token: SERVER_TOKEN, connectTimeout: timeout })).rejects.toThrow(/connectTimeout is a number of milliseconds/);
      await expect(client.close({ flushTimeout: timeout })).rejects.toThrow(/flushTimeout is a number of milliseconds/);
      await expect(server.close({ flushTimeout: timeout })).rejects.toThrow(/flushTimeout is a number of milliseconds/);
    }
    // A bad call changed nothing: both handles work on, a peer too.
    expect([client.status, server.status]).toEqual(["open", "open"]);
    const peer = server.clients.get("alice");
    await peer.ready;
    await peer.send("still open");
    expect(await client.recv({ timeout: 5000 })).toBe("still open");
  });
});

/**
 * alice's first recv is given up (aborted) once its item "a" left the object,
 * "b" behind it; what the object sends alice is held on `link` from then on.
 * Returns alice, her second recv (its GET waits at the object behind "a") and
 * how many receives wait on her pipe.
 */
async function lateAbort(link: FaultyLink, label: string) {
  const space = uniqueSpace(label);
  const server = await open.server(space);
  const client = await open.client(space, "alice", {}, link.url);
  const peer = server.clients.get("alice");
  await peer.ready;
  const receivers = async () => (await pipeState(space, "alice", "pipe:down:default")).receivers;
  const gone = new AbortController();
  const first = client.recv({ signal: gone.signal });
  await until(async () => (await receivers()) === 1, { what: "the first recv waiting" });
  link.hold(); // what the object sends the client from now on stays on its way
  await peer.send("a"); // delivered to the first recv, on its way
  await peer.send("b");
  gone.abort();
  await expect(first).rejects.toMatchObject({ name: "AbortError" });
  const second = client.recv({ timeout: 10_000 });
  // Its GET waits at the object behind "a", which is still on its way to the given-up recv.
  await until(async () => (await receivers()) === 1, { what: "the second recv waiting" });
  return { client, second, receivers };
}

describe("a recv given up while its item is on its way", () => {
  test("an abort that comes too late: the item comes back ahead of the next one, and the next recv gets it first", async () => {
    const link = await faultyLink(workerUrl());
    try {
      const { client, second } = await lateAbort(link, "late-abort");
      link.release(); // "a" arrives for the given-up recv, and the library hands it back
      expect(await second).toBe("a");
      expect(await client.recv({ timeout: 5000 })).toBe("b");
    } finally {
      await link.close();
    }
  });

  test("and the link drops: the hand-back of that item is not sent again on the next socket, and the next recv gets it there, once", async () => {
    const link = await faultyLink(workerUrl());
    try {
      const { client, second, receivers } = await lateAbort(link, "late-abort-drop");
      // "a" reaches the library, which hands it back; what the object answers stays on its way.
      link.release();
      link.hold();
      await until(async () => (await receivers()) === 0, { what: "the hand-back served the second recv" });
      link.cut(); // the answers (the second recv's "a", the RELEASE's) are lost with the socket
      link.release(); // (nothing of that socket's: only the next socket's answers pass from now on)
      expect(await second).toBe("a");
      expect(await client.recv({ timeout: 5000 })).toBe("b");
      await expect(client.recv({ timeout: 500 })).rejects.toMatchObject({ name: "TimeoutError" });
    } finally {
      await link.close();
    }
  });
});
