// Sockets whose library pinged and then fell silent for 90 s (a link that
// died without a close) are taken for dead: ended like a close, so what they
// were given is held for their session and their client goes offline. The
// 90 s are reached by asking with a later clock (`endSilent(now)`), or by
// moving the object's clock ahead (fake Date) for a delivery, a HELLO or an
// HTTP request.
import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, test, vi } from "vitest";
import { CloseCode, Msg, PING, PONG } from "../../client/protocol.js";
import type { SharedObject } from "../../worker/shared-object.js";
import { KINDS, spaceTarget, type ReadyWire } from "./objects.js";
import { SERVER_TOKEN, Wire, fetchWorker, spacePath, unique } from "./wire.js";
import { got, put, putAndTake, storedItems, take, until, waitingGet } from "./channels.js";

/** Past the 90 s after which a socket that pinged before is taken for dead. */
const SILENT_AND_A_BIT = 91_000;

/** Sends a PING and waits for its PONG (the runtime then has a ping time for the socket). */
async function ping(wire: ReadyWire): Promise<void> {
  const before = wire.frames.filter((f) => f[0] === "TEXT" && f[1] === PONG).length;
  wire.sendRaw(PING);
  await wire.waitFor(() => wire.frames.filter((f) => f[0] === "TEXT" && f[1] === PONG).length > before, "a PONG");
}

afterEach(() => {
  vi.useRealTimers();
});

describe.each(KINDS)("silent sockets of the %s", (_kind, makeTarget) => {
  test("one that pinged and then went quiet for 90 s is ended, its leased item held for its session; one that never pinged is left", async () => {
    const target = makeTarget();
    const quiet = await target.client("alice");
    const old = await target.server(); // an older library: it never pings
    await ping(quiet);
    const item = await putAndTake(old, quiet, "x");
    expect(await runInDurableObject(target.stub, (instance: SharedObject) => instance.endSilent(Date.now() + 30_000))).toBe(0);
    expect(await runInDurableObject(target.stub, (instance: SharedObject) => instance.endSilent(Date.now() + SILENT_AND_A_BIT))).toBe(1);
    expect((await quiet.closed).code).toBe(CloseCode.SILENT);
    const [stored] = await storedItems(target.stub);
    expect(stored).toMatchObject({ seq: item.seq, lease: null, session: expect.any(String), held_until: expect.any(Number) });
    // The other socket goes on.
    await put(old, "y");
    expect((await take(old))?.value).toBe("y");
  });

  test("one whose pings come once a minute (a hidden browser tab: Chrome runs its chained timers once a minute) is not taken for dead when a ping is a little late", async () => {
    const target = makeTarget();
    const hidden = await target.client("alice");
    const producer = await target.server();
    await ping(hidden);
    // Its next ping is due a minute after this one: a few seconds late is no dead link, for a HELLO's sweep...
    expect(await runInDurableObject(target.stub, (instance: SharedObject) => instance.endSilent(Date.now() + 65_000))).toBe(0);
    // ... nor for a delivery to its waiting receive.
    const get = await waitingGet(hidden);
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + 65_000 });
    await put(producer, "for a hidden tab");
    vi.useRealTimers();
    expect(await got(hidden, get)).toMatchObject({ value: "for a hidden tab" });
    await ping(hidden);
  });

  test("a receive waiting on a socket gone silent is not given the next item; the socket is ended", async () => {
    const target = makeTarget();
    const receiver = await target.client("alice");
    const producer = await target.server();
    await ping(receiver);
    await waitingGet(receiver);
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + SILENT_AND_A_BIT });
    await put(producer, "for someone alive");
    vi.useRealTimers();
    expect((await receiver.closed).code).toBe(CloseCode.SILENT);
    const [stored] = await storedItems(target.stub);
    expect(stored).toMatchObject({ lease: null, session: null }); // in line, for the next receiver
    expect((await take(producer))?.value).toBe("for someone alive");
  });
});

test("the next HELLO ends sockets gone silent: their client is offline, the servers hear it, and that HELLO does not list it", async () => {
  const target = spaceTarget();
  const server = await target.server();
  const alice = await target.client("alice");
  await target.client("bob");
  await ping(alice);
  // 90 s later, the next HELLO looks for silent sockets first.
  vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + SILENT_AND_A_BIT });
  const late = await target.server();
  vi.useRealTimers();
  expect(late.hello.result?.clients?.map(([id]) => id)).toEqual(["bob"]);
  expect((await alice.closed).code).toBe(CloseCode.SILENT);
  await until(async () => server.frames.some((f) => f[0] === Msg.CLIENT_OFFLINE && f[1] === "alice"), "the server heard alice leave");
});

test("HTTP asks about clients: sockets gone silent are ended first, so GET /clients does not list their client as online", async () => {
  const space = unique("space");
  const alice = await Wire.ready(spacePath(space, "client", "alice"));
  await Wire.ready(spacePath(space, "client", "bob"));
  await ping(alice);
  const online = async () => {
    const response = await fetchWorker(`/v1/spaces/${space}/clients`, { headers: { authorization: `Bearer ${SERVER_TOKEN}` } });
    const page = (await response.json()) as { clients: { id: string; online: boolean }[] };
    return page.clients.filter((c) => c.online).map((c) => c.id);
  };
  expect(await online()).toEqual(["alice", "bob"]);
  vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + SILENT_AND_A_BIT });
  const later = await online();
  vi.useRealTimers();
  expect(later).toEqual(["bob"]);
  expect((await alice.closed).code).toBe(CloseCode.SILENT);
});
