// Items are never lost nor delivered twice when a consumer's connections are
// cut mid-stream, again and again.
import { afterEach, describe, expect, test } from "vitest";
import { handles } from "../helpers/handles.js";
import { faultyLink, type FaultyLink } from "../helpers/proxy.js";
import { uniqueSpace, until, workerUrl } from "../helpers/e2e.js";

const open = handles();
const links: FaultyLink[] = [];
afterEach(async () => {
  await Promise.all(links.splice(0).map((link) => link.close()));
});

/** Cuts `link` every `every` ms until `stop()` is called; returns how many cuts hit a live connection. */
function keepCutting(link: FaultyLink, every: number) {
  let cuts = 0;
  const timer = setInterval(() => {
    if (link.cut() > 0) cuts++;
  }, every);
  return { stop: () => (clearInterval(timer), cuts) };
}

/**
 * Cuts mid-stream, but only a connection that has been open for a second:
 * a link that flaps faster makes the client back off (by design), which
 * would only slow the test down.
 */
function cutter(link: FaultyLink, handle: { status: string; on(event: "status", fn: (s: string) => void): unknown }) {
  let openSince = handle.status === "open" ? Date.now() : Infinity;
  handle.on("status", (status) => (openSince = status === "open" ? Date.now() : Infinity));
  let cuts = 0;
  return {
    maybeCut() {
      if (Date.now() - openSince < 1000) return;
      if (link.cut() > 0) cuts++;
      openSince = Infinity;
    },
    get cuts() {
      return cuts;
    },
  };
}

/**
 * Sends 0, 1, 2, ... with `send` until the receiving end's sockets were cut
 * `cuts` times (by `cut`, on every 10th item received), then lets the rest
 * of what was sent arrive. The stream is as long as the cuts need: a fixed
 * item count made fewer cuts as the library got faster.
 */
async function streamThroughCuts(send: (n: number) => Promise<void>, receive: () => Promise<number>, cut: ReturnType<typeof cutter>, cuts = 3) {
  let sent = 0;
  let stop = false;
  const sending = (async () => {
    while (!stop) await send(sent++);
  })();
  const received: number[] = [];
  const deadline = Date.now() + 30_000;
  while (cut.cuts < cuts) {
    if (Date.now() > deadline) throw new Error(`only ${cut.cuts} cuts in 30 s`);
    received.push(await receive());
    if (received.length % 10 === 0) cut.maybeCut();
  }
  stop = true;
  await sending;
  while (received.length < sent) received.push(await receive());
  return { received, sent };
}

describe("faults", () => {
  test("a global-queue consumer whose sockets are cut many times gets every item exactly once", async () => {
    const space = uniqueSpace("faults");
    const link = await faultyLink(workerUrl());
    links.push(link);
    const server = await open.server(space);
    const consumer = await open.client(space, "consumer", {}, link.url);

    // Cut right after an item arrives, while its acknowledgement is on its way.
    const cut = cutter(link, consumer);
    const { received, sent } = await streamThroughCuts(
      (n) => server.queues["jobs"].put(n),
      () => consumer.globals.queues["jobs"].get(),
      cut,
    );

    expect(cut.cuts).toBeGreaterThanOrEqual(3);
    expect(received).toEqual([...Array(sent).keys()]); // each once, in order
    await expect(server.queues["jobs"].get({ timeout: 0 })).rejects.toMatchObject({ name: "TimeoutError" });
  });

  test("a writer whose sockets are cut while its batches are on their way has each write stored once, in order", async () => {
    const space = uniqueSpace("faults");
    const link = await faultyLink(workerUrl());
    links.push(link);
    const writer = await open.client(space, "writer", {}, link.url);
    const server = await open.server(space);
    const peer = server.clients.get("writer");
    await peer.ready;
    // Writes made in one turn leave as one BATCH message: cut while some are on
    // their way, the object may still read them after its side of the socket closed.
    let n = 0;
    let stop = false;
    const puts: Promise<void>[] = [];
    const writing = (async () => {
      while (!stop) {
        for (let i = 0; i < 2; i++) puts.push(writer.put(n++));
        writer["last"] = n;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    let cuts = 0;
    while (cuts < 5) {
      await until(() => writer.status === "open", { what: "open again" });
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 100));
      if (link.cut() > 0) cuts++;
    }
    stop = true;
    await writing;
    await Promise.all(puts);
    await writer.sync();
    expect(peer["last"]).toBe(n);
    const items: number[] = [];
    for (;;) {
      const item = await peer.get({ timeout: 0 }).catch(() => undefined);
      if (item === undefined) break;
      items.push(item);
    }
    expect(items.length).toBe(n);
    expect(items).toEqual([...Array(n).keys()]);
  });

  test("two consumers, one of them on a failing link: each item goes to exactly one of them", async () => {
    const space = uniqueSpace("faults");
    const link = await faultyLink(workerUrl());
    links.push(link);
    const server = await open.server(space);
    const flaky = await open.client(space, "flaky", {}, link.url);
    const steady = await open.client(space, "steady");
    const total = 300;
    for (let i = 0; i < total; i++) await server.put(i);

    const got = { flaky: [] as number[], steady: [] as number[] };
    let done = 0;
    const consume = async (client: typeof flaky, into: number[]) => {
      while (done < total) {
        try {
          into.push(await client.globals.get({ timeout: 1000 }));
          done++;
        } catch (error) {
          if ((error as Error).name !== "TimeoutError") throw error;
        }
      }
    };
    const cutter = keepCutting(link, 100);
    await Promise.all([consume(flaky, got.flaky), consume(steady, got.steady)]);
    const cuts = cutter.stop();

    expect(cuts).toBeGreaterThanOrEqual(3);
    const all = [...got.flaky, ...got.steady].sort((a, b) => a - b);
    expect(all).toEqual([...Array(total).keys()]);
  });

  test("a pipe stream to a client whose sockets are cut arrives whole and in order", async () => {
    const space = uniqueSpace("faults");
    const link = await faultyLink(workerUrl());
    links.push(link);
    const server = await open.server(space);
    const client = await open.client(space, "reader", {}, link.url);
    const peer = server.clients.get("reader");
    const cut = cutter(link, client);
    const { received, sent } = await streamThroughCuts(
      (n) => peer.send({ n }),
      async () => (await client.recv()).n,
      cut,
    );
    expect(cut.cuts).toBeGreaterThanOrEqual(3);
    expect(received).toEqual([...Array(sent).keys()]);
    await until(() => client.status === "open", { what: "the client to reconnect" });
  });

  test("a receiver whose round trip is longer than its timeout still gets every item, in order", async () => {
    const space = uniqueSpace("slow-link");
    const link = await faultyLink(workerUrl());
    links.push(link);
    const client = await open.client(space, "far");
    const server = await open.server(space, link.url);
    const peer = server.clients.get("far");
    await peer.ready;
    for (let i = 0; i < 5; i++) await client.send(i);
    link.latency(250); // a round trip of 500 ms against waits of 100 ms

    const received: unknown[] = [];
    let timeouts = 0;
    while (received.length < 5) {
      try {
        received.push(await peer.recv({ timeout: 100 }));
      } catch (error) {
        expect((error as Error).name).toBe("TimeoutError");
        if (++timeouts > 20) break;
      }
    }
    expect(received).toEqual([0, 1, 2, 3, 4]);
    link.latency(0);
    expect(await client.pipes["default"].size()).toBe(0);
    await expect(peer.recv({ timeout: 100 })).rejects.toMatchObject({ name: "TimeoutError" });
  });
});
