// A client socket lives as long as its token (token mode; see tokenTimes in
// worker/shared-object.ts). These objects run in open mode, so the tokens'
// times are written into the sockets' attachments here, as a HELLO or AUTH
// with a token would; the e2e tokens test runs the whole of it in token mode.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, test } from "vitest";
import { CloseCode, Msg, Op, encodeFrame } from "../../client/protocol.js";
import type { SharedObject, SocketState } from "../../worker/shared-object.js";
import { KINDS, type Stub } from "./objects.js";
import { put, take } from "./channels.js";

/** Gives the socket of `session` a token expiring at `expires`, to be renewed from `renewAt`. */
function giveToken(stub: Stub, session: string, expires: number, renewAt: number): Promise<void> {
  return runInDurableObject(stub, (object: SharedObject) => {
    const socket = [...object.getConnections<SocketState>()].find((c) => c.state?.session === session)!;
    socket.setState({ ...socket.state!, expires, renewAt });
  });
}

describe.each(KINDS)("client tokens' times on the %s", (_kind, makeTarget) => {
  test("one pass ends the sockets whose token expired, asks for a new token those due within half their lead, and names the next time", async () => {
    const target = makeTarget();
    const [soon, later, expired] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
    const wires = {
      soon: await target.client("alice", { session: soon }),
      later: await target.client("alice", { session: later }),
      expired: await target.client("alice", { session: expired }),
    };
    const producer = await target.server();
    const now = Date.now();
    await giveToken(target.stub, soon, now + 80_000, now + 20_000); // asked from 30 s before its renewal time: now
    await giveToken(target.stub, later, now + 100_000, now + 40_000); // not before now + 10 s
    await giveToken(target.stub, expired, now - 1, now - 60_001);
    const next = await runInDurableObject(target.stub, (object: SharedObject) => object.tokenTimes(now));
    expect(next).toBe(now + 40_000);
    expect((await wires.expired.closed).code).toBe(CloseCode.TOKEN_EXPIRED);
    await wires.soon.waitFor(() => wires.soon.frames.some((f) => f[0] === Msg.RENEW), "RENEW");
    // The others were served on: one more frame each, and no RENEW for the later one.
    await put(producer, "x");
    expect((await take(wires.later))?.value).toBe("x");
    expect(wires.later.frames.some((f) => f[0] === Msg.RENEW)).toBe(false);
    // Asked already, the soon one is looked at next when its token expires.
    expect(await runInDurableObject(target.stub, (object: SharedObject) => object.tokenTimes(now + 9_000))).toBe(now + 40_000);
    expect(await runInDurableObject(target.stub, (object: SharedObject) => object.tokenTimes(now + 79_000))).toBe(now + 80_000);
  });

  test("a socket asked for a new token is not asked again by later passes before its token expires (a fixed token's library answers each RENEW with AUTH)", async () => {
    const target = makeTarget();
    const [asked, other] = [crypto.randomUUID(), crypto.randomUUID()];
    const wire = await target.client("alice", { session: asked });
    await target.client("alice", { session: other });
    const now = Date.now();
    await giveToken(target.stub, asked, now + 80_000, now + 20_000); // asked at once
    await giveToken(target.stub, other, now + 100_000, now + 40_000); // from now + 10 s
    const renews = () => wire.frames.filter((f) => f[0] === Msg.RENEW).length;
    expect(await runInDurableObject(target.stub, (object: SharedObject) => object.tokenTimes(now))).toBe(now + 40_000);
    await wire.waitFor((f) => f[0] === Msg.RENEW, "RENEW");
    // Passes for the other socket's times (its RENEW, then ten seconds later), before the asked one's expiry.
    expect(await runInDurableObject(target.stub, (object: SharedObject) => object.tokenTimes(now + 10_000))).toBe(now + 80_000);
    expect(await runInDurableObject(target.stub, (object: SharedObject) => object.tokenTimes(now + 20_000))).toBe(now + 80_000);
    // (A reply sent after them has come: so would have a RENEW.)
    expect((await wire.request(Op.SIZE, "queue", "default"))[0]).toBe(Msg.REPLY);
    expect(renews()).toBe(1);
    // At its expiry, it ends.
    expect(await runInDurableObject(target.stub, (object: SharedObject) => object.tokenTimes(now + 80_000))).toBe(now + 100_000);
    expect((await wire.closed).code).toBe(CloseCode.TOKEN_EXPIRED);
    expect(renews()).toBe(1);
  });

  test("a request on a socket whose token expired before the alarm ended it is not served: the socket closes", async () => {
    const target = makeTarget();
    const session = crypto.randomUUID();
    const wire = await target.client("alice", { session });
    const producer = await target.server();
    await put(producer, "kept");
    await giveToken(target.stub, session, Date.now() - 1, Date.now() - 60_001);
    wire.send([Op.GET, 50, "queue", "default", false]);
    expect((await wire.closed).code).toBe(CloseCode.TOKEN_EXPIRED);
    expect(wire.frames.some((f) => f[1] === 50)).toBe(false);
    // The item is still there for someone else.
    expect((await take(producer))?.value).toBe("kept");
  });

  test("a socket found expired in the middle of a BATCH gets the replies of the batch so far, then closes; the rest is not served", async () => {
    const target = makeTarget();
    const session = crypto.randomUUID();
    const wire = await target.client("alice", { session });
    const producer = await target.server();
    await put(producer, "kept");
    // Its token runs out while the first frame is served (as if the clock passed its expiry there).
    await runInDurableObject(target.stub, (object: SharedObject) => {
      const patched = object as unknown as { handle(socket: { state: SocketState; setState(s: SocketState): void }, ...rest: unknown[]): Promise<void> };
      const handle = patched.handle;
      patched.handle = async function (socket, ...rest) {
        await handle.call(this, socket, ...rest);
        socket.setState({ ...socket.state, expires: Date.now() - 1, renewAt: Date.now() - 60_001 });
      };
    });
    wire.send([Op.BATCH, 0, [encodeFrame([Op.SIZE, 60, "queue", "default"]), encodeFrame([Op.GET, 61, "queue", "default", false])]]);
    expect((await wire.closed).code).toBe(CloseCode.TOKEN_EXPIRED);
    expect(wire.frames.filter((f) => f[1] === 60)).toEqual([[Msg.REPLY, 60, 1]]);
    expect(wire.frames.some((f) => f[1] === 61)).toBe(false);
    expect((await take(producer))?.value).toBe("kept");
  });

  test("a RENEW to a socket that is closing already does not stop the pass: the others are asked, and the next time comes back", async () => {
    const target = makeTarget();
    const [closing, other] = [crypto.randomUUID(), crypto.randomUUID()];
    await target.client("alice", { session: closing });
    const wire = await target.client("alice", { session: other });
    const now = Date.now();
    await giveToken(target.stub, closing, now + 80_000, now + 20_000); // both asked at once
    await giveToken(target.stub, other, now + 90_000, now + 30_000);
    const next = await runInDurableObject(target.stub, (object: SharedObject) => {
      // Closed on this side, its close event not in yet: a send to it throws.
      [...object.getConnections<SocketState>()].find((c) => c.state?.session === closing)!.close(1000, "closing");
      return object.tokenTimes(now);
    });
    expect(next).toBe(now + 80_000);
    await wire.waitFor((f) => f[0] === Msg.RENEW, "RENEW");
  });
});
