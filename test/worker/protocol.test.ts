// Bad input on the wire: every malformed frame, unknown operation and wrong
// argument gets its documented ERROR reply; stored state is unchanged after
// it and the socket goes on serving. Handshake failures close the socket with
// their documented close code.
import { describe, expect, test } from "vitest";
import { CloseCode, ErrorCode, Limits, Msg, Op, PING, PONG, PROTOCOL_VERSION } from "../../client/protocol.js";
import { encodeValue } from "../../client/codec.js";
import { KINDS, dumpStorage, spaceTarget, type Target } from "./objects.js";
import type { Wire } from "./wire.js";

const enc = (value: unknown) => encodeValue(value);
const NOT_A_VALUE = new Uint8Array([0xff]); // a CBOR "break" on its own

/** A target with a key and a queued item stored, and a socket that wrote them (dict version 1). */
async function seeded(makeTarget: () => Target) {
  const target = makeTarget();
  const wire = await target.client();
  expect((await wire.set("keep", enc("kept")))[2]).toBe(1);
  expect((await wire.request(Op.PUT, "queue", "default", enc("job")))[0]).toBe(Msg.REPLY);
  return { target, wire, before: await dumpStorage(target.stub) };
}

/** A bad frame to send on a socket that said HELLO; returns the request id the ERROR must carry. */
type Bad = (wire: Wire) => number;

const withId = (frame: (id: number) => unknown[]): Bad => (wire) => {
  const id = wire.id();
  wire.send(frame(id));
  return id;
};
const raw = (data: Uint8Array | string): Bad => (wire) => {
  wire.sendRaw(data);
  return 0; // no request id can be read from it
};

const CASES: [string, Bad, string][] = [
  ["a text frame", raw("hello"), ErrorCode.BAD_FRAME],
  ["a lone CBOR break", raw(new Uint8Array([0xff])), ErrorCode.BAD_FRAME],
  ["a truncated array", raw(new Uint8Array([0x82, 0x01])), ErrorCode.BAD_FRAME],
  ["two CBOR items in one frame", raw(new Uint8Array([0x01, 0x02])), ErrorCode.BAD_FRAME],
  ["an empty frame", raw(new Uint8Array(0)), ErrorCode.BAD_FRAME],
  ["a frame over MAX_FRAME_BYTES", raw(new Uint8Array(Limits.MAX_FRAME_BYTES + 1)), ErrorCode.FRAME_TOO_LARGE],
  ["a map instead of an array", (w) => (w.send({ op: 10 } as unknown as unknown[]), 0), ErrorCode.BAD_FRAME],
  ["an op that is not a number", (w) => (w.send(["DICT_SET", 1, "k", enc(1)]), 0), ErrorCode.BAD_FRAME],
  ["a negative request id", (w) => (w.send([Op.DICT_SET, -1, "k", enc(1)]), 0), ErrorCode.BAD_FRAME],
  ["a fractional request id", (w) => (w.send([Op.DICT_SET, 1.5, "k", enc(1)]), 0), ErrorCode.BAD_FRAME],
  ["an unknown op", withId((id) => [99, id]), ErrorCode.UNKNOWN_OP],
  ["a message kind sent as a request", withId((id) => [Msg.REPLY, id, null]), ErrorCode.UNKNOWN_OP],
  ["DICT_SET with a number key", withId((id) => [Op.DICT_SET, id, 7, enc(1)]), ErrorCode.BAD_ARGUMENT],
  ["DICT_SET with an unencoded value", withId((id) => [Op.DICT_SET, id, "k", "v"]), ErrorCode.BAD_ARGUMENT],
  ["DICT_SET with a malformed value", withId((id) => [Op.DICT_SET, id, "k", NOT_A_VALUE]), ErrorCode.BAD_VALUE],
  ["DICT_SET with a key over MAX_KEY_BYTES", withId((id) => [Op.DICT_SET, id, "é".repeat(Limits.MAX_KEY_BYTES / 2 + 1), enc(1)]), ErrorCode.KEY_TOO_LARGE],
  ["DICT_SET with a value over MAX_VALUE_BYTES", withId((id) => [Op.DICT_SET, id, "k", enc(new Uint8Array(Limits.MAX_VALUE_BYTES))]), ErrorCode.VALUE_TOO_LARGE],
  ["DICT_DELETE without a key", withId((id) => [Op.DICT_DELETE, id]), ErrorCode.BAD_ARGUMENT],
  ["DICT_UPDATE with an object", withId((id) => [Op.DICT_UPDATE, id, { k: enc(1) }]), ErrorCode.BAD_ARGUMENT],
  // One bad entry after a good one: nothing of the update is applied.
  ["DICT_UPDATE with one bad pair", withId((id) => [Op.DICT_UPDATE, id, [["a", enc(1)], ["b"]]]), ErrorCode.BAD_ARGUMENT],
  ["DICT_UPDATE with one malformed value", withId((id) => [Op.DICT_UPDATE, id, [["a", enc(1)], ["b", NOT_A_VALUE]]]), ErrorCode.BAD_VALUE],
  ["PUT to a channel kind that does not exist", withId((id) => [Op.PUT, id, "stack", "default", enc(1)]), ErrorCode.BAD_ARGUMENT],
  ["PUT to an empty name", withId((id) => [Op.PUT, id, "queue", "", enc(1)]), ErrorCode.BAD_ARGUMENT],
  ["PUT with an unencoded value", withId((id) => [Op.PUT, id, "queue", "default", 5]), ErrorCode.BAD_ARGUMENT],
  ["PUT with a malformed value", withId((id) => [Op.PUT, id, "queue", "default", NOT_A_VALUE]), ErrorCode.BAD_VALUE],
  ["GET without the wait flag", withId((id) => [Op.GET, id, "queue", "default"]), ErrorCode.BAD_ARGUMENT],
  ["ACK of a number", withId((id) => [Op.ACK, id, 1]), ErrorCode.BAD_ARGUMENT],
  ["ACK of a negative item", withId((id) => [Op.ACK, id, [-1]]), ErrorCode.BAD_ARGUMENT],
  ["ACK with a quiet flag that is not a boolean", withId((id) => [Op.ACK, id, [1], "yes"]), ErrorCode.BAD_ARGUMENT],
  ["ACK over MAX_ACK_BATCH", withId((id) => [Op.ACK, id, Array.from({ length: Limits.MAX_ACK_BATCH + 1 }, (_, i) => i + 1)]), ErrorCode.BAD_ARGUMENT],
  ["RELEASE of strings", withId((id) => [Op.RELEASE, id, ["1"]]), ErrorCode.BAD_ARGUMENT],
  ["CANCEL of a string", withId((id) => [Op.CANCEL, id, "1"]), ErrorCode.BAD_ARGUMENT],
  ["SIZE of a channel kind that does not exist", withId((id) => [Op.SIZE, id, "list", "default"]), ErrorCode.BAD_ARGUMENT],
  ["a second HELLO", withId((id) => [Op.HELLO, id, { v: PROTOCOL_VERSION, session: "again" }]), ErrorCode.BAD_ARGUMENT],
];

describe.each(KINDS)("bad frames to the %s", (_kind, makeTarget) => {
  test.each(CASES)("%s gets an ERROR and changes nothing", async (_name, bad, code) => {
    const { target, wire, before } = await seeded(makeTarget);
    const id = bad(wire);
    const error = await wire.waitFor((f) => f[0] === Msg.ERROR, "an ERROR");
    expect(error).toEqual([Msg.ERROR, id, code, expect.any(String)]);
    // Nothing but, for a refused write, its refusal (kept for the session, whose reply may be lost).
    const { session_refusals: refusals = [], ...after } = await dumpStorage(target.stub);
    const { session_refusals: _, ...unchanged } = before;
    expect(after).toEqual(unchanged);
    const write = /^(DICT_|PUT)/.test(_name);
    expect(refusals.map((r) => [r.seq, r.code])).toEqual(write ? [[id, code]] : []);
    // Still open and serving: the next write is version 2, so the bad frame wrote none.
    expect(await wire.set("after", enc(2))).toEqual([Msg.REPLY, expect.any(Number), 2]);
  });
});

describe.each(KINDS)("the %s's heartbeat", (_kind, makeTarget) => {
  test("a text PING is answered PONG, before and after HELLO, and is no bad frame", async () => {
    const target = makeTarget();
    const wire = await target.raw();
    const pongs = () => wire.frames.filter((f) => f[0] === "TEXT" && f[1] === PONG).length;
    wire.sendRaw(PING);
    await wire.waitFor(() => pongs() === 1, "the first PONG");
    const hello = await wire.hello();
    expect(hello.result).toMatchObject({ full: true });
    wire.sendRaw(PING);
    await wire.waitFor(() => pongs() === 2, "the second PONG");
    expect((await wire.set("k", enc(1)))[0]).toBe(Msg.REPLY);
    // Nothing but the PONGs came as text, and no ERROR at all.
    expect(wire.frames.filter((f) => f[0] === "TEXT" || f[0] === Msg.ERROR)).toEqual([["TEXT", PONG], ["TEXT", PONG]]);
  });
});

describe.each(KINDS)("the %s's handshake", (_kind, makeTarget) => {
  test("an operation before HELLO gets NOT_READY, and HELLO still works after", async () => {
    const { target, before } = await seeded(makeTarget);
    const wire = await target.raw();
    const reply = await wire.request(Op.DICT_SET, "k", enc(1));
    expect(reply).toEqual([Msg.ERROR, expect.any(Number), ErrorCode.NOT_READY, expect.any(String)]);
    expect((await wire.request(Op.SIZE, "queue", "default"))[2]).toBe(ErrorCode.NOT_READY);
    expect(await dumpStorage(target.stub)).toEqual(before);
    const hello = await wire.hello();
    expect(hello.result).toMatchObject({ version: 1, full: true });
  });

  test.each([
    ["no session", { session: undefined }],
    ["an empty session", { session: "" }],
    ["a session over 64 characters", { session: "s".repeat(65) }],
    ["a negative since", { since: -1 }],
    ["a token that is not a string", { token: 42 }],
    ["no protocol version", { v: undefined }],
  ])("a HELLO with %s gets BAD_ARGUMENT and the socket may try again", async (_name, fields) => {
    const { target, before } = await seeded(makeTarget);
    const wire = await target.raw();
    const failed = await wire.hello(fields);
    expect(failed.reply).toEqual([Msg.ERROR, expect.any(Number), ErrorCode.BAD_ARGUMENT, expect.any(String)]);
    expect(failed.chunks).toEqual([]);
    expect(await dumpStorage(target.stub)).toEqual(before);
    expect((await wire.hello()).result).toMatchObject({ version: 1 });
  });

  test("another protocol version is refused and the socket closed with PROTOCOL_VERSION", async () => {
    const { target, before } = await seeded(makeTarget);
    const wire = await target.raw();
    const failed = await wire.hello({ v: PROTOCOL_VERSION + 1 });
    expect(failed.reply).toEqual([Msg.ERROR, expect.any(Number), ErrorCode.PROTOCOL_VERSION, expect.any(String)]);
    expect(failed.chunks).toEqual([]); // no snapshot leaks before the refusal
    expect(await wire.closed).toEqual({ code: CloseCode.PROTOCOL_VERSION, reason: ErrorCode.PROTOCOL_VERSION });
    expect(await dumpStorage(target.stub)).toEqual(before);
  });

  test.each([
    ["a wrong server token", { token: "not-the-server-token" }],
    ["the server token with a character more", { token: "test-server-token!" }],
    ["no token", { token: undefined }],
    ["an empty token", { token: "" }],
  ])("the server role with %s is refused and closed with UNAUTHORIZED", async (_name, fields) => {
    const { target, before } = await seeded(makeTarget);
    const wire = await target.raw();
    const server = await target.rawServer();
    const failed = await server.hello(fields);
    expect(failed.reply).toEqual([Msg.ERROR, expect.any(Number), ErrorCode.UNAUTHORIZED, expect.any(String)]);
    expect(failed.chunks).toEqual([]);
    expect(await server.closed).toEqual({ code: CloseCode.UNAUTHORIZED, reason: ErrorCode.UNAUTHORIZED });
    expect(await dumpStorage(target.stub)).toEqual(before);
    // Other sockets are unaffected.
    expect((await wire.hello()).result).toMatchObject({ version: 1 });
  });
});

test("only the server may issue client tokens (FORBIDDEN for a client)", async () => {
  const { target, wire, before } = await seeded(spaceTarget);
  const reply = await wire.request(Op.ISSUE_TOKEN, "bob", 60);
  expect(reply).toEqual([Msg.ERROR, expect.any(Number), ErrorCode.FORBIDDEN, expect.any(String)]);
  expect(await dumpStorage(target.stub)).toEqual(before);
  const server = await target.server();
  const issued = await server.request(Op.ISSUE_TOKEN, "bob", 60);
  expect(issued[0]).toBe(Msg.REPLY);
  expect(typeof issued[2]).toBe("string");
});
