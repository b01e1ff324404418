// What a client that skips the library can send, and what must not follow
// from it: values no library call writes are refused where they are written;
// the HTTP API answers a typed error (never a 500) for values stored by an
// earlier version without that check, and for JSON that would explode; and
// sockets that never say HELLO cannot fill an object.
import { runInDurableObject } from "cloudflare:test";
import { expect, test } from "vitest";
import { ErrorCode, Limits, Msg, Op, PROTOCOL_VERSION, encodeFrame } from "../../client/protocol.js";
import { MAX_DEPTH, decodeValue, encodeValue } from "../../client/codec.js";
import type { SharedObject, SocketState } from "../../worker/shared-object.js";
import { SERVER_TOKEN, Wire, clientPath, entriesOf, fetchWorker, spacePath, unique } from "./wire.js";
import { clientStub, holdNextAuthorize, releaseAuthorize, spaceStub, untilAuthorizeHeld } from "./objects.js";
import { until } from "./channels.js";

/** Makes `target[method]` throw `error` the next time it is called (a fault), then work again. */
function failOnce(target: object, method: string, error: Error): void {
  const t = target as Record<string, (...args: unknown[]) => unknown>;
  const real = t[method].bind(target);
  let failed = false;
  t[method] = (...args: unknown[]) => {
    if (failed) return real(...args);
    failed = true;
    throw error;
  };
}

const nest = (depth: number, leaf: unknown): unknown => {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};

const auth = { authorization: `Bearer ${SERVER_TOKEN}` };

// Tag 12345 around the integer 1: decodes to a cbor-x Tag, which no shareable value is.
const TAGGED = new Uint8Array([0xd9, 0x30, 0x39, 0x01]);
/** `depth` nested one-item arrays around the integer 1. */
const nested = (depth: number): Uint8Array => {
  const bytes = new Uint8Array(depth + 1).fill(0x81);
  bytes[depth] = 0x01;
  return bytes;
};

test("values the library never writes (an unknown tag, nesting past MAX_DEPTH) are refused where they are written", async () => {
  const space = unique("hostile");
  const wire = await Wire.ready(spacePath(space, "client", "mallory"));
  const codeOf = (frame: unknown[]) => (frame[0] === Msg.ERROR ? frame[2] : "no error");
  for (const value of [TAGGED, nested(MAX_DEPTH + 2), nested(3000)]) {
    expect(codeOf(await wire.request(Op.DICT_SET, "k", value))).toBe(ErrorCode.BAD_VALUE);
    expect(codeOf(await wire.request(Op.DICT_UPDATE, [["k", value]]))).toBe(ErrorCode.BAD_VALUE);
    expect(codeOf(await wire.request(Op.PUT, "queue", "jobs", value))).toBe(ErrorCode.BAD_VALUE);
  }
  // As deep as the library writes is fine.
  expect(await wire.request(Op.DICT_SET, "k", nested(MAX_DEPTH))).toEqual([Msg.REPLY, expect.any(Number), 1]);
  expect(await wire.request(Op.SIZE, "queue", "jobs")).toEqual([Msg.REPLY, expect.any(Number), 0]);
});

test("values stored unchecked by an earlier version: the HTTP API answers 406, not 500, and the other keys stay readable", async () => {
  const space = unique("hostile");
  const wire = await Wire.ready(spacePath(space, "client", "alice"));
  await wire.set("good", encodeValue("fine"));
  // Written straight into storage, as a version without the check let a raw socket do.
  await runInDurableObject(spaceStub(space), (_object: SharedObject, state) => {
    state.storage.sql.exec("INSERT INTO dict (key, value, v) VALUES ('tagged', ?, 100), ('deep', ?, 101)", TAGGED, nested(3000));
  });
  const get = (path: string, accept?: string) => fetchWorker(`/v1/spaces/${space}${path}`, { headers: { ...auth, ...(accept ? { accept } : {}) } });
  expect((await get("/globals/deep")).status).toBe(406);
  expect((await get("/globals")).status).toBe(406); // the page as JSON holds the deep one
  expect((await get("/globals", "application/cbor")).status).toBe(406); // and the tagged one cannot be encoded again
  const good = await get("/globals/good");
  expect([good.status, await good.json()]).toEqual([200, "fine"]);
  const raw = await get("/globals/tagged", "application/cbor"); // one value as CBOR: the bytes as stored
  expect(new Uint8Array(await raw.arrayBuffer())).toEqual(TAGGED);
  const summary = await fetchWorker(`/v1/spaces/${space}/summary`, { headers: auth }); // the inspector's view
  expect(summary.status).toBe(200);
});

test("bytes count against the JSON budget: one shared 16 KiB array, 1,000 times, is 406 in JSON and exact in CBOR", async () => {
  const space = unique("hostile");
  const wire = await Wire.ready(spacePath(space, "client", "mallory"));
  const bytes = new Uint8Array(16 * 1024).fill(7);
  const value = encodeValue(Array.from({ length: 1000 }, () => bytes));
  expect(value.byteLength).toBeLessThan(Limits.MAX_VALUE_BYTES);
  expect(await wire.request(Op.DICT_SET, "bomb", value)).toEqual([Msg.REPLY, expect.any(Number), 1]);
  const json = await fetchWorker(`/v1/spaces/${space}/globals/bomb`, { headers: auth });
  expect(json.status).toBe(406);
  const cbor = await fetchWorker(`/v1/spaces/${space}/globals/bomb`, { headers: { ...auth, accept: "application/cbor" } });
  const back = decodeValue(new Uint8Array(await cbor.arrayBuffer())) as Uint8Array[];
  expect([back.length, back[999].byteLength, back[0] === back[999]]).toEqual([1000, 16 * 1024, true]);
  const summary = await fetchWorker(`/v1/spaces/${space}/summary`, { headers: auth });
  expect(summary.status).toBe(200);
  expect(JSON.stringify(await summary.json())).toContain("not shown as JSON");
});

test("text counts against the JSON budget: a 64 KiB string or key, shared 10,000 times, is 406 in JSON (not 500), exact in CBOR, and not previewed", async () => {
  const space = unique("hostile");
  const wire = await Wire.ready(spacePath(space, "client", "mallory"));
  const big = "x".repeat(64 * 1024);
  const values = {
    string: Array.from({ length: 10_000 }, ((holder) => () => holder)([big])), // 655 MB as JSON
    key: Array.from({ length: 10_000 }, ((holder) => () => holder)({ [big]: 0 })),
    regexp: Array.from({ length: 10_000 }, ((holder) => () => holder)(new RegExp(big))),
    // Within the preview's 10,000 nodes: 4,900 × 64 KiB (321 MB) written out for a 300-character preview.
    preview: Array.from({ length: 4_900 }, ((holder) => () => holder)([big])),
  };
  for (const [key, value] of Object.entries(values)) {
    const encoded = encodeValue(value);
    expect(encoded.byteLength).toBeLessThan(200 * 1024);
    expect(await wire.request(Op.DICT_SET, key, encoded)).toEqual([Msg.REPLY, expect.any(Number), expect.any(Number)]);
    const json = await fetchWorker(`/v1/spaces/${space}/globals/${key}`, { headers: auth });
    expect([key, json.status, ((await json.json()) as { error: { code: string } }).error.code]).toEqual([key, 406, ErrorCode.BAD_VALUE]);
  }
  const cbor = await fetchWorker(`/v1/spaces/${space}/globals/string`, { headers: { ...auth, accept: "application/cbor" } });
  const back = decodeValue(new Uint8Array(await cbor.arrayBuffer())) as string[][];
  expect([back.length, back[9_999][0].length, back[0] === back[9_999]]).toEqual([10_000, 64 * 1024, true]);
  // The whole dict as JSON: no page can hold the first value, so 406 too.
  expect((await fetchWorker(`/v1/spaces/${space}/globals`, { headers: auth })).status).toBe(406);
  const summary = await fetchWorker(`/v1/spaces/${space}/summary`, { headers: auth });
  expect(summary.status).toBe(200);
  const { globals } = (await summary.json()) as { globals: { dict: [string, string][] } };
  // (A summary shows the first keys up to 256 KiB of values: "key" and "preview" here.)
  expect(globals.dict.map(([key, shown]) => [key, shown.startsWith("(not shown as JSON")])).toEqual([["key", true], ["preview", true]]);
});

test("a JSON page ends before the value whose text would pass the budget; a value without shared references shows in full", async () => {
  const space = unique("hostile");
  const wire = await Wire.ready(spacePath(space, "client", "alice"));
  const long = "y".repeat(1000 * 1024); // as long as a value's text can be without sharing
  const holder = ["z".repeat(4 * 1024)];
  await wire.set("a", encodeValue(long));
  await wire.set("b", encodeValue(Array.from({ length: 4_000 }, () => holder))); // 16 Mi characters as JSON
  const one = await fetchWorker(`/v1/spaces/${space}/globals/a`, { headers: auth });
  expect([one.status, ((await one.json()) as string).length]).toEqual([200, long.length]);
  const page = await fetchWorker(`/v1/spaces/${space}/globals`, { headers: auth });
  expect([page.status, page.headers.get("sharevars-next"), Object.keys(await page.json())]).toEqual([200, "a", ["a"]]);
  const summary = (await (await fetchWorker(`/v1/spaces/${space}/summary`, { headers: auth })).json()) as { globals: { dict: [string, string][] } };
  expect(summary.globals.dict[0]).toEqual(["a", `"${"y".repeat(299)}…`]);
});

/** A CBOR bignum (tag 2, or 3 when negative) whose magnitude is `bytes` bytes of 0xff, as a byte string with a 4-byte length. */
const bignum = (bytes: number, negative = false): Uint8Array => {
  const out = new Uint8Array(6 + bytes).fill(0xff);
  out.set([negative ? 0xc3 : 0xc2, 0x5a]);
  new DataView(out.buffer).setUint32(2, bytes);
  return out;
};

/** A frame [op, id, <raw CBOR>] with `raw` as its third item. */
const frameWith = (op: number, id: number, raw: Uint8Array): Uint8Array => {
  const head = encodeFrame([op, id, null] as never); // [op, id, null]: the null (one byte) is replaced
  const out = new Uint8Array(head.byteLength - 1 + raw.byteLength);
  out.set(head.subarray(0, -1));
  out.set(raw, head.byteLength - 1);
  return out;
};

test("bignums past 1,024 bytes are refused, in a frame before HELLO and in a value; up to 1,024 bytes they round-trip", async () => {
  const space = unique("hostile");
  // Before HELLO: the frame does not decode (cbor-x alone would take it, and its time, quadratic in the length).
  const stranger = await Wire.open(spacePath(space, "client", "mallory"));
  stranger.sendRaw(frameWith(Op.HELLO, 1, bignum(32 * 1024)));
  expect(await stranger.reply(0)).toEqual([Msg.ERROR, 0, ErrorCode.BAD_FRAME, expect.any(String)]);
  expect(stranger.frames.some((f) => f[1] === 1)).toBe(false);
  // In a value, over a socket and over HTTP (CBOR body).
  const wire = await Wire.ready(spacePath(space, "client", "alice"));
  const codeOf = (frame: unknown[]) => (frame[0] === Msg.ERROR ? frame[2] : "no error");
  for (const value of [bignum(1025), bignum(1025, true), encodeValue([2n ** 8192n])]) {
    expect(codeOf(await wire.request(Op.DICT_SET, "big", value))).toBe(ErrorCode.BAD_VALUE);
    expect(codeOf(await wire.request(Op.PUT, "queue", "jobs", value))).toBe(ErrorCode.BAD_VALUE);
  }
  const put = await fetchWorker(`/v1/spaces/${space}/globals/big`, { method: "PUT", headers: { ...auth, "content-type": "application/cbor" }, body: bignum(1025) });
  expect([put.status, ((await put.json()) as { error: { code: string } }).error.code]).toEqual([400, ErrorCode.BAD_VALUE]);
  expect(await wire.request(Op.SIZE, "queue", "jobs")).toEqual([Msg.REPLY, expect.any(Number), 0]);
  // The largest, either sign, is stored and read back exact.
  const largest = [2n ** 8192n - 1n, -(2n ** 8192n)];
  expect(await wire.request(Op.DICT_SET, "big", encodeValue(largest))).toEqual([Msg.REPLY, expect.any(Number), 1]);
  const back = await fetchWorker(`/v1/spaces/${space}/globals/big`, { headers: { ...auth, accept: "application/cbor" } });
  expect(decodeValue(new Uint8Array(await back.arrayBuffer()))).toEqual(largest);
  const json = await fetchWorker(`/v1/spaces/${space}/globals/big`, { headers: auth });
  expect(await json.json()).toEqual(largest.map(String));
});

test("a frame holding a bignum as long as a frame allows is answered at once, and the object goes on serving", async () => {
  const space = unique("hostile");
  const server = await Wire.ready(spacePath(space, "server"), { token: SERVER_TOKEN });
  const stranger = await Wire.open(spacePath(space, "client", "mallory"));
  const started = Date.now();
  stranger.sendRaw(frameWith(Op.HELLO, 1, bignum(Limits.MAX_FRAME_BYTES - 16)));
  expect(await stranger.reply(0)).toEqual([Msg.ERROR, 0, ErrorCode.BAD_FRAME, expect.any(String)]);
  expect(await server.request(Op.SIZE, "queue", "jobs")).toEqual([Msg.REPLY, expect.any(Number), 0]);
  expect(Date.now() - started).toBeLessThan(2000);
});

test("a summary offset past the safe integers is a 400", async () => {
  const res = await fetchWorker(`/v1/spaces/${unique("hostile")}/summary?offset=1e300`, { headers: auth });
  expect(res.status).toBe(400);
});

test("numbers in a query are digits only: hex, exponents, signs, spaces and empty ones are 400s, not read as numbers", async () => {
  const space = unique("hostile");
  const status = async (path: string, method = "GET") => [path, (await fetchWorker(`/v1/spaces/${space}${path}`, { method, headers: auth })).status];
  const takes = ["wait=0x10", "wait=1e3", "wait=%20", "wait=+5", "wait=5.0", "lease=0x1", "lease=%2010", "lease=-0"];
  for (const query of takes) expect(await status(`/queues/q/get?${query}`, "POST")).toEqual([`/queues/q/get?${query}`, 400]);
  for (const query of ["offset=1e3", "offset=%20", "limit=0x10", "limit="]) expect(await status(`/clients?${query}`)).toEqual([`/clients?${query}`, 400]);
  for (const query of ["offset=", "offset=%20", "offset=0x10", "offset=1e1"]) expect(await status(`/summary?${query}`)).toEqual([`/summary?${query}`, 400]);
  // What they mean, in digits, is fine.
  expect(await status("/queues/q/get?wait=16&lease=0010", "POST")).toEqual(["/queues/q/get?wait=16&lease=0010", 204]);
  expect(await status("/clients?offset=1000&limit=16")).toEqual(["/clients?offset=1000&limit=16", 200]);
  expect(await status("/summary?offset=10")).toEqual(["/summary?offset=10", 200]);
});

test("sockets that never say HELLO count against the object's connections, give their place to one that says HELLO, and are closed after 10 s", async () => {
  const space = unique("hostile");
  const path = clientPath(space, "alice", "client");
  const silent: Wire[] = [];
  for (let i = 0; i < Limits.MAX_CONNECTIONS_PER_CLIENT; i++) silent.push(await Wire.open(path));
  // One more, over the limit: its HELLO passes, so it takes the place of the
  // socket that has waited longest without one (anyone may open sockets).
  const alice = await Wire.open(path);
  expect((await alice.hello()).reply[0]).toBe(Msg.REPLY);
  expect(await silent[0].reply(0)).toEqual([Msg.ERROR, 0, ErrorCode.TOO_MANY_CONNECTIONS, expect.any(String)]);
  expect((await silent[0].closed).code).toBe(4029);
  // One more that says nothing is closed within a few seconds.
  const quiet = await Wire.open(path);
  const started = Date.now();
  expect((await quiet.closed).code).toBe(4029);
  expect(Date.now() - started).toBeLessThan(5000);
  // The other silent ones are closed after 10 s; the one that said HELLO stays.
  const closes = await Promise.all(silent.slice(1).map((w) => w.closed));
  expect(new Set(closes.map((c) => c.code))).toEqual(new Set([4008]));
  expect(alice.ws.readyState).toBe(WebSocket.READY_STATE_OPEN);
  alice.close();
}, 20_000);

test("with every place held by a socket that said HELLO, the HELLO of one more is refused", async () => {
  const { path } = await eveWithRoomFor(2);
  await Wire.ready(path);
  await Wire.ready(path);
  const extra = await Wire.open(path);
  expect((await extra.hello()).reply).toEqual([Msg.ERROR, expect.any(Number), ErrorCode.TOO_MANY_CONNECTIONS, expect.any(String)]);
  expect((await extra.closed).code).toBe(4029);
});

test("a write applied, then failing later in its handling (a delivery), is not remembered as refused", async () => {
  const space = unique("hostile");
  const session = crypto.randomUUID();
  const a = await Wire.ready(spacePath(space, "client", "alice"), { session });
  await runInDurableObject(spaceStub(space), (object: SharedObject) => {
    failOnce(object, "serveWaiters", new Error("a failure after the item was stored"));
  });
  const id = a.id();
  a.send([Op.PUT, id, "queue", "jobs", encodeValue("job")]);
  await a.waitFor((f) => f[0] === Msg.ERROR && f[1] === id, "the ERROR");
  a.close();
  const b = await Wire.ready(spacePath(space, "client", "alice"), { session, pending: id });
  expect((await b.request(Op.SIZE, "queue", "jobs"))[2]).toBe(1);
  expect(b.hello.result!.lastSeq).toBe(id);
  expect(b.frames.filter((f) => f[0] === Msg.ERROR)).toEqual([]); // no refusal told again
  b.close();
});

test("a HELLO that fails on the object's side closes its socket, so that a library reconnects instead of waiting", async () => {
  const space = unique("hostile");
  await runInDurableObject(spaceStub(space), (object: SharedObject) => {
    failOnce(object, "authorize", new Error("a fault while the token was checked"));
  });
  const wire = await Wire.open(spacePath(space, "client", "alice"));
  const reply = await wire.hello();
  expect(reply.reply).toEqual([Msg.ERROR, expect.any(Number), ErrorCode.INTERNAL, expect.any(String)]);
  expect((await wire.closed).code).toBe(4000);
  const again = await Wire.ready(spacePath(space, "client", "alice")); // the next one works
  again.close();
  // A second HELLO on an accepted socket is refused, and the socket stays.
  const twice = await Wire.ready(spacePath(space, "client", "bob"));
  expect((await twice.request(Op.HELLO, { v: PROTOCOL_VERSION, session: "again" }))[0]).toBe(Msg.ERROR);
  expect((await twice.request(Op.SIZE, "queue", "q"))[0]).toBe(Msg.REPLY);
  twice.close();
});

test("a HELLO that fails after reading storage closes its socket, which never joined", async () => {
  const space = unique("hostile");
  const watcher = await Wire.ready(spacePath(space, "server"), { token: SERVER_TOKEN });
  await runInDurableObject(spaceStub(space), (object: SharedObject) => {
    failOnce(object.sessions, "refusals", new Error("a storage fault while the refusals were read"));
  });
  const wire = await Wire.open(spacePath(space, "client", "alice"));
  expect((await wire.hello()).reply).toEqual([Msg.ERROR, expect.any(Number), ErrorCode.INTERNAL, expect.any(String)]);
  expect((await wire.closed).code).toBe(4000);
  const alice = await Wire.ready(spacePath(space, "client", "alice"));
  await watcher.waitFor((f) => f[0] === Msg.CLIENT_ONLINE && f[1] === "alice", "alice online");
  // The failed socket was never online, so it never went offline either.
  expect(watcher.frames.filter((f) => f[0] === Msg.CLIENT_OFFLINE)).toEqual([]);
  alice.close();
  watcher.close();
});

/** Eve's client object in a new space, taking `connections` sockets at most. */
async function eveWithRoomFor(connections: number) {
  const space = unique("hostile");
  const stub = clientStub(space, "eve");
  await runInDurableObject(stub, (object: SharedObject) => {
    Object.defineProperty(object, "maxConnections", { get: () => connections });
  });
  return { path: clientPath(space, "eve", "client"), stub };
}

test("a recount while a socket is closing does not count its later close out twice", async () => {
  const { path, stub } = await eveWithRoomFor(2);
  const a = await Wire.open(path);
  const b = await Wire.open(path);
  await runInDurableObject(stub, async (object: SharedObject, state) => {
    state.getWebSockets()[0].close(1000, "closed by the object"); // closing until the peer's close comes
    const pair = new WebSocketPair(); // a third opens meanwhile: over the limit, so the object counts again
    state.acceptWebSocket(pair[1]);
    (object as unknown as { keep: unknown }).keep = pair;
    await object.onConnect(pair[1] as never);
  });
  expect((await Promise.race([a.closed, b.closed])).code).toBe(1000);
  await new Promise((r) => setTimeout(r, 200));
  // Open now: one of a and b, and the third: the limit. Another is over it:
  // its HELLO takes the place of the silent socket that opened first.
  const [left] = await Promise.race([a.closed.then(() => [b]), b.closed.then(() => [a])]);
  const extra = await Wire.open(path);
  expect((await extra.hello()).reply[0]).toBe(Msg.REPLY);
  expect((await left.closed).code).toBe(4029);
});

test("receives waiting at once on one object are bounded over all its connections", async () => {
  const space = unique("hostile");
  await runInDurableObject(spaceStub(space), (object: SharedObject) => {
    Object.defineProperty(object, "maxWaits", { get: () => 3 });
  });
  const a = await Wire.ready(spacePath(space, "client", "a"));
  const b = await Wire.ready(spacePath(space, "client", "b"));
  const waiting = [a.id(), a.id(), b.id()];
  a.send([Op.GET, waiting[0], "queue", "q1", true]);
  a.send([Op.GET, waiting[1], "queue", "q2", true]);
  b.send([Op.GET, waiting[2], "queue", "q3", true]);
  expect(await b.request(Op.GET, "queue", "q4", true)).toEqual([Msg.ERROR, expect.any(Number), ErrorCode.TOO_MANY_WAITS, expect.any(String)]);
  // One served makes room again.
  expect((await b.request(Op.PUT, "queue", "q1", encodeValue("x")))[0]).toBe(Msg.REPLY);
  await a.waitFor((f) => f[0] === Msg.REPLY && f[1] === waiting[0], "a's first wait served");
  const id = b.id();
  b.send([Op.GET, id, "queue", "q4", true]);
  expect((await b.request(Op.SIZE, "queue", "q4"))[0]).toBe(Msg.REPLY);
  expect(b.frames.some((f) => f[0] === Msg.ERROR && f[1] === id)).toBe(false);
  a.close();
  b.close();
});

test("a HELLO whose joining step fails on storage: the socket never joined, and is closed (4000)", async () => {
  const space = unique("hostile");
  const watcher = await Wire.ready(spacePath(space, "server"), { token: SERVER_TOKEN });
  await runInDurableObject(spaceStub(space), (object: SharedObject) => {
    failOnce(object, "joined", new Error("a storage fault while the client registry was read"));
  });
  const wire = await Wire.open(spacePath(space, "client", "alice"));
  expect((await wire.hello()).reply).toEqual([Msg.ERROR, expect.any(Number), ErrorCode.INTERNAL, expect.any(String)]);
  expect((await wire.closed).code).toBe(4000);
  expect(wire.frames.map((f) => f[0])).toEqual([Msg.ERROR]); // no REPLY before it
  const alice = await Wire.ready(spacePath(space, "client", "alice")); // the next one joins
  await watcher.waitFor((f) => f[0] === Msg.CLIENT_ONLINE && f[1] === "alice", "alice online");
  alice.close();
  watcher.close();
});

test("a send to one server failing while a client joins: the client still joins, and the other servers are told", async () => {
  const space = unique("hostile");
  const s1 = await Wire.ready(spacePath(space, "server"), { token: SERVER_TOKEN });
  const s2 = await Wire.ready(spacePath(space, "server"), { token: SERVER_TOKEN });
  await runInDurableObject(spaceStub(space), (object: SharedObject) => {
    const [first] = object.getConnections("server");
    failOnce(first, "send", new Error("a send on a closing socket"));
  });
  const alice = await Wire.ready(spacePath(space, "client", "alice"));
  const told = async () => [s1, s2].filter((s) => s.frames.some((f) => f[0] === Msg.CLIENT_ONLINE && f[1] === "alice")).length;
  await until(async () => (await told()) === 1, "one server told");
  alice.close();
  // Whoever was told she is online is told she left.
  await until(async () => [s1, s2].filter((s) => s.frames.some((f) => f[0] === Msg.CLIENT_OFFLINE && f[1] === "alice")).length === 2, "both told she left");
  s1.close();
  s2.close();
});

test("one over the limit takes the place of a socket that sent nothing, not of one whose HELLO is being checked", async () => {
  const { path, stub } = await eveWithRoomFor(2);
  const owner = await Wire.open(path); // the oldest: its HELLO is on its way through authorize
  const silent = await Wire.open(path);
  const late = await Wire.open(path); // over the limit
  await holdNextAuthorize(stub); // a slow check
  const hello = owner.id();
  owner.send([Op.HELLO, hello, { v: PROTOCOL_VERSION, session: crypto.randomUUID() }]);
  await untilAuthorizeHeld(stub); // (else late's HELLO would be the one held)
  expect((await late.hello()).reply[0]).toBe(Msg.REPLY);
  expect((await silent.closed).code).toBe(4029);
  await releaseAuthorize(stub);
  expect((await owner.reply(hello))[0]).toBe(Msg.REPLY);
  owner.close();
  late.close();
});

test("a socket that opened over the limit says HELLO after another left: it is let in", async () => {
  const { path, stub } = await eveWithRoomFor(2);
  const a = await Wire.ready(path);
  const b = await Wire.ready(path);
  const late = await Wire.open(path); // the third: over the limit as it opens
  a.close();
  await a.closed;
  await new Promise((r) => setTimeout(r, 100));
  expect((await late.hello()).reply[0]).toBe(Msg.REPLY);
  b.close();
  late.close();
});

test("a dict write while a send to another socket fails: applied, reported applied to its writer, and its change reaches every other socket", async () => {
  const space = unique("hostile");
  const session = crypto.randomUUID();
  const s1 = await Wire.ready(spacePath(space, "server"), { token: SERVER_TOKEN });
  const s2 = await Wire.ready(spacePath(space, "server"), { token: SERVER_TOKEN });
  const alice = await Wire.ready(spacePath(space, "client", "alice"), { session });
  await runInDurableObject(spaceStub(space), (object: SharedObject) => {
    const [first] = object.getConnections("server");
    failOnce(first, "send", new Error("a send on a closing socket"));
  });
  const id = alice.id();
  alice.send([Op.DICT_SET, id, "k", encodeValue("v")]);
  // Stored: its writer is told so (not an error), and the one server whose send worked sees the change.
  expect(await alice.reply(id)).toEqual([Msg.REPLY, id, 1]);
  await until(async () => [s1, s2].some((s) => s.changes().length === 1), "the change sent on");
  expect([s1, s2].flatMap((s) => s.changes())).toEqual([[Msg.CHANGE, 1, [["k", encodeValue("v")]], false]]);
  alice.close();
  // Its next HELLO takes it for applied, and tells no refusal.
  const again = await Wire.ready(spacePath(space, "client", "alice"), { session, pending: id });
  expect(again.hello.result!.lastSeq).toBe(id);
  expect(again.frames.filter((f) => f[0] === Msg.ERROR)).toEqual([]);
  expect(entriesOf(again.hello.chunks)).toEqual({ k: "v" });
  again.close();
  s1.close();
  s2.close();
});

test("a put whose reply fails to send (its socket closing): the receiver waiting for it gets it, and it is not remembered as refused", async () => {
  const space = unique("hostile");
  const session = crypto.randomUUID();
  const receiver = await Wire.ready(spacePath(space, "server"), { token: SERVER_TOKEN });
  const get = receiver.id();
  receiver.send([Op.GET, get, "queue", "jobs", true]);
  expect((await receiver.request(Op.SIZE, "queue", "jobs"))[2]).toBe(0); // (its GET waits in the object)
  const alice = await Wire.ready(spacePath(space, "client", "alice"), { session });
  await runInDurableObject(spaceStub(space), (object: SharedObject) => {
    const [socket] = object.getConnections("client:alice");
    failOnce(socket, "send", new Error("a send on a closing socket"));
  });
  const id = alice.id();
  alice.send([Op.PUT, id, "queue", "jobs", encodeValue("job")]);
  const reply = await receiver.reply(get);
  expect([reply[0], decodeValue((reply[2] as [number, Uint8Array])[1])]).toEqual([Msg.REPLY, "job"]);
  alice.close();
  const again = await Wire.ready(spacePath(space, "client", "alice"), { session, pending: id });
  expect(again.hello.result!.lastSeq).toBe(id);
  expect(again.frames.filter((f) => f[0] === Msg.ERROR)).toEqual([]);
  again.close();
  receiver.close();
});

test("items served to several waiting receivers at once while the send to the first fails: the others get theirs", async () => {
  const space = unique("hostile");
  const session = crypto.randomUUID();
  const producer = await Wire.ready(spacePath(space, "client", "alice"));
  const first = await Wire.ready(spacePath(space, "server"), { token: SERVER_TOKEN, session });
  const second = await Wire.ready(spacePath(space, "server"), { token: SERVER_TOKEN });
  // Two items the producer took, then two receivers waiting behind them.
  for (const v of ["a", "b"]) expect((await producer.request(Op.PUT, "queue", "jobs", encodeValue(v)))[0]).toBe(Msg.REPLY);
  const taken: number[] = [];
  for (let i = 0; i < 2; i++) taken.push(((await producer.request(Op.GET, "queue", "jobs", false))[2] as [number])[0]);
  const gets: number[] = [];
  for (const wire of [first, second]) {
    gets.push(wire.id());
    wire.send([Op.GET, gets.at(-1)!, "queue", "jobs", true]);
    expect((await wire.request(Op.SIZE, "queue", "jobs"))[2]).toBe(0); // (waiting, in this order)
  }
  await runInDurableObject(spaceStub(space), (object: SharedObject) => {
    const socket = [...object.getConnections<SocketState>("server")].find((c) => c.state?.session === session)!;
    failOnce(socket, "send", new Error("a send on a closing socket"));
  });
  // Handed back together: one pass serves both waiters, and the send to the first fails.
  await producer.request(Op.RELEASE, taken);
  const reply = await second.reply(gets[1]);
  expect([reply[0], decodeValue((reply[2] as [number, Uint8Array])[1])]).toEqual([Msg.REPLY, "b"]);
  producer.close();
  first.close();
  second.close();
});
