// A receiver's socket closes before it acknowledged an item: the item is
// held for its session for RECONNECT_GRACE_MS (so a reconnecting handle gets
// it exactly once), then goes back to the head of the line for everyone. The
// hold's end is reached by moving the stored hold time into the past and
// running the object's alarm, as the runtime would 20 s later.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, test } from "vitest";
import { CloseCode, Msg, Op, PROTOCOL_VERSION, encodeFrame } from "../../client/protocol.js";
import { RECONNECT_GRACE_MS } from "../../worker/fifo.js";
import type { SharedObject } from "../../worker/shared-object.js";
import { KINDS, holdNextAuthorize, releaseAuthorize, untilAuthorizeHeld, type Stub, type Target } from "./objects.js";
import { ack, closeHolding, got, put, putAndTake, size, startGet, stillWaiting, storedItems, take, waitingGet } from "./channels.js";

/** Ends every hold now, as if the grace period had passed. */
function endHolds(stub: Stub): Promise<void> {
  return runInDurableObject(stub, (_instance: SharedObject, state) => {
    state.storage.sql.exec("UPDATE fifo_entries SET held_until = ? WHERE held_until IS NOT NULL", Date.now() - 1);
  });
}

function alarmAt(stub: Stub): Promise<number | null> {
  return runInDurableObject(stub, (_instance: SharedObject, state) => state.storage.getAlarm());
}

/** Alice's session took item "x" (put by a server socket) and her socket closed before acknowledging it. */
async function heldForAlice(target: Target) {
  const session = crypto.randomUUID();
  const before = await target.client("alice", { session });
  const other = await target.server();
  const x = await putAndTake(other, before, "x");
  await closeHolding(before, target.stub, [x.seq]);
  return { session, other, x };
}

describe.each(KINDS)("items leased on a closed socket of the %s", (kind, makeTarget) => {
  test("are held for the receiver's session for the grace period", async () => {
    const target = makeTarget();
    const session = crypto.randomUUID();
    const receiver = await target.client("alice", { session });
    const other = await target.server();
    await put(other, "x");
    await put(other, "y");
    const x = (await take(receiver))!;
    const closedAt = Date.now();
    await closeHolding(receiver, target.stub, [x.seq]);

    const [held] = await storedItems(target.stub);
    expect(held).toMatchObject({ seq: x.seq, lease: null, session });
    expect(held.held_until! - closedAt).toBeGreaterThanOrEqual(RECONNECT_GRACE_MS);
    expect(held.held_until! - Date.now()).toBeLessThanOrEqual(RECONNECT_GRACE_MS);
    // Others pass the held item by: the next one is theirs.
    expect((await take(other))?.value).toBe("y");
    expect(await take(other)).toBeNull();
  });

  test("are held as well when an error ended the socket, and a close after it changes nothing", async () => {
    const target = makeTarget();
    const session = crypto.randomUUID();
    const receiver = await target.client("alice", { session });
    const other = await target.server();
    const x = await putAndTake(other, receiver, "x");
    // The receiver's socket (the only one with the client role here) ends with
    // an error, which may come without a close event; then a close event comes.
    const leaseAfterError = await runInDurableObject(target.stub, async (instance: SharedObject, state) => {
      const [ws] = state.getWebSockets("client");
      ws.close(1011, "gone");
      await instance.webSocketError(ws, new Error("the socket broke"));
      // Read before any close event is served: the error alone ended the lease.
      const lease = state.storage.sql.exec<{ lease: string | null }>("SELECT lease FROM fifo_entries WHERE seq = ?", x.seq).one().lease;
      await instance.webSocketClose(ws, 1011, "gone", false);
      return lease;
    });
    expect(leaseAfterError).toBeNull();
    const [held] = await storedItems(target.stub);
    expect(held).toMatchObject({ seq: x.seq, lease: null, session });
    expect(held.held_until).toBeGreaterThan(Date.now());
    // Handled once: the space object told its server once that alice left (a client object tells nobody).
    await size(other);
    expect(other.frames.filter((f) => f[0] === Msg.CLIENT_OFFLINE)).toHaveLength(kind === "space object" ? 1 : 0);
  });

  test("the same session reconnecting gets a held item again, exactly once", async () => {
    const target = makeTarget();
    const { session, other, x } = await heldForAlice(target);

    const after = await target.client("alice", { session });
    expect(await take(after)).toEqual(x); // the reply was lost with the socket: asked again, given again
    expect(await take(after)).toBeNull();
    expect(await ack(after, [x.seq])).toBe(1);
    expect(await storedItems(target.stub)).toEqual([]);
    expect(await take(other)).toBeNull();
  });

  test("the same session reconnecting may acknowledge a held item it had received", async () => {
    const target = makeTarget();
    const { session, other, x } = await heldForAlice(target);

    const after = await target.client("alice", { session });
    expect(await ack(after, [x.seq])).toBe(1);
    expect(await take(after)).toBeNull();
    expect(await size(other)).toBe(0);
    expect(await storedItems(target.stub)).toEqual([]);
  });

  test("a new socket of the session ends the old one: its GET gets the item at once", async () => {
    const target = makeTarget();
    const session = crypto.randomUUID();
    const old = await target.client("alice", { session });
    const stranger = await target.server();
    const x = await putAndTake(stranger, old, "x");
    // Another session waits first; the hold still gives x to the session that had it.
    const strangerGet = await waitingGet(stranger);
    const fresh = await target.client("alice", { session });
    expect(await old.closed).toMatchObject({ code: 1000 }); // superseded by the new socket's HELLO
    const freshGet = startGet(fresh);
    expect(await got(fresh, freshGet)).toEqual(x);
    expect(await stillWaiting(stranger, strangerGet)).toBe(true);
  });

  test("go back to the head of the line for everyone once the hold ends", async () => {
    const target = makeTarget();
    const receiver = await target.client();
    const other = await target.server();
    for (const value of ["x", "y", "z"]) await put(other, value);
    const x = (await take(receiver))!;
    await closeHolding(receiver, target.stub, [x.seq]);
    expect((await take(other))?.value).toBe("y");
    await endHolds(target.stub);
    expect(await take(other)).toEqual(x); // before z, its old place
    expect((await take(other))?.value).toBe("z");
  });

  test("a GET waiting behind a hold is served by the alarm at the hold's end", async () => {
    const target = makeTarget();
    const receiver = await target.client();
    const waiter = await target.server();
    const x = await putAndTake(waiter, receiver, "x");
    const get = await waitingGet(waiter);
    await closeHolding(receiver, target.stub, [x.seq]);

    // The object woke itself for the moment the hold ends.
    const [held] = await storedItems(target.stub);
    expect(await alarmAt(target.stub)).toBe(held.held_until);
    // Before that moment the alarm gives nothing away, and stays set.
    expect(await runDurableObjectAlarm(target.stub)).toBe(true);
    expect(await stillWaiting(waiter, get)).toBe(true);
    expect(await alarmAt(target.stub)).toBe(held.held_until);

    await endHolds(target.stub);
    expect(await runDurableObjectAlarm(target.stub)).toBe(true);
    expect(await got(waiter, get)).toEqual(x);
    expect(await alarmAt(target.stub)).toBeNull();
  });

  test("a handle that closes for good (SESSION_ENDED) gives back what it had, held items of its session too", async () => {
    const target = makeTarget();
    const { session, other, x } = await heldForAlice(target);
    // x stays held for alice; her new socket is given y on another queue.
    const last = await target.client("alice", { session });
    await put(other, "y", "queue", "jobs");
    const y = (await take(last, "queue", "jobs"))!;
    const get = await waitingGet(other);
    last.ws.close(CloseCode.SESSION_ENDED, "closed");
    // Nobody waits 20 s for a session that ended: both are back in line at once.
    expect(await got(other, get)).toEqual(x);
    expect(await take(other, "queue", "jobs")).toEqual(y);
  });

  test("once another receiver has it, the old session neither gets nor acknowledges it", async () => {
    const target = makeTarget();
    const session = crypto.randomUUID();
    const before = await target.client("alice", { session });
    const other = await target.server();
    const x = await putAndTake(other, before, "x");
    await closeHolding(before, target.stub, [x.seq]);
    await endHolds(target.stub);
    expect(await take(other)).toEqual(x);

    const after = await target.client("alice", { session });
    expect(await take(after)).toBeNull();
    expect(await ack(after, [x.seq])).toBe(0);
    expect(await ack(other, [x.seq])).toBe(1);
  });
});

describe.each(KINDS)("a session that reconnects before the %s saw its old socket close", (_kind, makeTarget) => {
  // The library opens a new socket once its old one failed on its side; the
  // object may see that old socket open for a while yet (a dead link's close
  // comes late). What was delivered on the old socket and never reached the
  // handle is the session's, in its place in line: the replayed GET gets it
  // first, not an item put after it.
  test("its replayed GET gets the item delivered to the old socket, before later ones", async () => {
    const target = makeTarget();
    const session = crypto.randomUUID();
    const old = await target.client("alice", { session });
    const producer = await target.server();
    const get = await waitingGet(old);
    await put(producer, "first");
    expect((await got(old, get))?.value).toBe("first"); // on the wire; the handle never saw it

    const fresh = await target.client("alice", { session });
    const replayed = startGet(fresh);
    await put(producer, "second");
    expect((await got(fresh, replayed))?.value).toBe("first");
    expect((await take(fresh))?.value).toBe("second");
    old.close();
  });

  test("a request still arriving on the old socket once it was ended is not served: the item stays the session's", async () => {
    const target = makeTarget();
    const session = crypto.randomUUID();
    const old = await target.client("alice", { session });
    const producer = await target.server();
    await put(producer, "x");
    // The old socket as the object sees it, kept to hand it a message after it was ended.
    await runInDurableObject(target.stub, (object: SharedObject) => {
      (object as unknown as { old?: WebSocket }).old = [...object.getConnections<{ session: string }>()].find((c) => c.state?.session === session);
    });
    const fresh = await target.client("alice", { session });
    expect(await old.closed).toMatchObject({ code: 1000 });
    // A GET sent on the old socket before its handle gave it up, arriving now (a slow link).
    await runInDurableObject(target.stub, async (object: SharedObject) => {
      const ws = (object as unknown as { old: WebSocket }).old;
      expect(ws).toBeDefined();
      await object.webSocketMessage(ws, new Uint8Array(encodeFrame([Op.GET, 99, "queue", "default", false])).buffer);
    });
    // Nothing was leased to the ended socket: the session's new socket gets x.
    expect((await take(fresh))?.value).toBe("x");
  });

  test("an older socket of the session whose HELLO completes late does not end the newer one", async () => {
    const target = makeTarget();
    const session = crypto.randomUUID();
    const stale = await target.raw();
    // Its HELLO waits in authorize (a slow check) until the newer socket has joined.
    await holdNextAuthorize(target.stub);
    const staleHello = stale.id();
    stale.send([Op.HELLO, staleHello, { v: PROTOCOL_VERSION, session }]);
    await untilAuthorizeHeld(target.stub); // (else the newer socket's HELLO would be the one held)
    const fresh = await target.client("alice", { session });
    await releaseAuthorize(target.stub);
    // The stale socket is the one ended; the newer one stays and is served.
    expect(await stale.closed).toMatchObject({ code: 1000 });
    expect(await size(fresh)).toBe(0);
    expect(fresh.ws.readyState).toBe(WebSocket.READY_STATE_OPEN);
    fresh.close();
  });
});
