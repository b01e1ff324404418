// Protocol fuzzing: thousands of random, truncated, bit-flipped, oversized,
// ill-typed and out-of-order frames, alone and in BATCH messages of every
// shape, from raw sockets at both object kinds.
// Afterwards both objects still serve the real library, and every dict,
// queue and pipe holds exactly what it held before.
//
// Sockets that never said HELLO may send anything (even bit-flipped valid
// writes): nothing may be applied. Sockets that said HELLO send only frames
// that must change nothing: wrong argument types, unknown operations, and
// acks, cancels and releases of items they never received.
import { describe, expect, test } from "vitest";
import { Op, PROTOCOL_VERSION, encodeFrame } from "../../client/protocol.js";
import { encodeValue } from "../../client/codec.js";
import { handles } from "../helpers/handles.js";
import { rawSocket, type RawSocket } from "../helpers/raw.js";
import { SERVER_TOKEN, uniqueSpace, workerUrl } from "../helpers/e2e.js";
import { prng, type Rng } from "../helpers/random.js";

const open = handles();


/** Valid frames of every write operation: the material for mutations. */
function validWrites(id: number): Uint8Array[] {
  return [
    encodeFrame([Op.DICT_SET, id, "k", encodeValue({ v: 1 })]),
    encodeFrame([Op.DICT_DELETE, id, "a"]),
    encodeFrame([Op.DICT_CLEAR, id]),
    encodeFrame([Op.DICT_UPDATE, id, [["k", encodeValue(1)], ["j", encodeValue([2])]]]),
    encodeFrame([Op.PUT, id, "queue", "default", encodeValue("x")]),
    encodeFrame([Op.PUT, id, "pipe", "default", encodeValue("x")]),
    encodeFrame([Op.GET, id, "queue", "default", false]),
  ];
}

/** Anything at all: for sockets that never said HELLO. */
function anyFrame(rng: Rng, id: number, batches = true): Uint8Array | string {
  if (batches && rng.int(10) === 0) return batchOf(rng, id, (i) => anyFrame(rng, i, false));
  switch (rng.int(6)) {
    case 0: return rng.bytes(rng.int(64));
    case 1: { // bit flips in a valid write
      const frame = rng.pick(validWrites(id)).slice();
      for (let i = 0, n = 1 + rng.int(3); i < n; i++) frame[rng.int(frame.length)] ^= 1 << rng.int(8);
      return frame;
    }
    case 2: { // truncated valid write
      const frame = rng.pick(validWrites(id));
      return frame.slice(0, rng.int(frame.length));
    }
    case 3: return rng.pick(validWrites(id)); // valid, but before HELLO
    case 4: return "text frame " + rng.int(1000);
    default: return encodeFrame(randomCbor(rng, 3) as never);
  }
}

function randomCbor(rng: Rng, depth: number): unknown {
  const choice = rng.int(depth > 0 ? 9 : 6);
  switch (choice) {
    case 0: return rng.int(100) - 50;
    case 1: return "s" + rng.int(10);
    case 2: return rng.bytes(rng.int(8));
    case 3: return null;
    case 4: return rng.next() < 0.5;
    case 5: return rng.next() * 1e6;
    case 6: return Array.from({ length: rng.int(5) }, () => randomCbor(rng, depth - 1));
    case 7: return { [("k" + rng.int(3))]: randomCbor(rng, depth - 1) };
    default: return [rng.int(40), rng.int(1000), ...Array.from({ length: rng.int(4) }, () => randomCbor(rng, depth - 1))];
  }
}

/** A BATCH of frames from `make`, or a BATCH of the wrong shape (not bytes, nested, too many). */
function batchOf(rng: Rng, id: number, make: (id: number) => Uint8Array | string): Uint8Array {
  const inner = () => {
    const frame = make(id + rng.int(1000));
    return typeof frame === "string" ? new TextEncoder().encode(frame) : frame;
  };
  switch (rng.int(4)) {
    case 0: return encodeFrame([Op.BATCH, 0, rng.pick<unknown>(["x", 1, null, {}, [1, 2], ["s"]])] as never);
    case 1: return encodeFrame([Op.BATCH, 0, [encodeFrame([Op.BATCH, 0, [inner()]] as never), inner()]] as never);
    case 2: return encodeFrame([Op.BATCH, 0, Array.from({ length: 1001 }, () => Uint8Array.of(0x80))] as never);
    default: return encodeFrame([Op.BATCH, 0, Array.from({ length: 1 + rng.int(6) }, inner)] as never);
  }
}

/** Frames that must change nothing, for sockets that said HELLO. */
function harmlessFrame(rng: Rng, id: number, batches = true): Uint8Array | string {
  if (batches && rng.int(10) === 0) return batchOf(rng, id, (i) => harmlessFrame(rng, i, false));
  const wrong = () => rng.pick<unknown>([1, -1, 2.5, "s", null, [], {}, [1, 2], { a: 1 }, rng.bytes(3)]);
  const notBytes = () => rng.pick<unknown>([1, "s", null, [], {}, true]);
  const notString = () => rng.pick<unknown>([1, null, [], {}, true, rng.bytes(2)]);
  switch (rng.int(12)) {
    case 0: return rng.bytes(1 + rng.int(64)).map((b, i) => (i === 0 ? 0x40 | (b & 0x1f) : b)); // starts as a byte string: never an array
    case 1: return encodeFrame([Op.DICT_SET, id, notString(), encodeValue(1)] as never);
    case 2: return encodeFrame([Op.DICT_SET, id, "k", notBytes()] as never);
    case 3: return encodeFrame([Op.DICT_SET, id, "k", Uint8Array.of(0x9b, 0xff, 0xff)] as never); // not one CBOR value
    case 4: return encodeFrame([Op.DICT_DELETE, id, notString()] as never);
    case 5: return encodeFrame([Op.DICT_UPDATE, id, rng.pick<unknown>([1, "s", [[1, 2]], [["k", "v"]], [["k"]], {}])] as never);
    case 6: return encodeFrame([Op.PUT, id, rng.pick(["pipes", "queues", "", 1, null]), "default", encodeValue(1)] as never);
    case 7: return encodeFrame([Op.PUT, id, "queue", rng.pick<unknown>(["", 1, null, "n".repeat(300)]), encodeValue(1)] as never);
    case 8: return encodeFrame([Op.GET, id, "queue", "default", rng.pick<unknown>([1, 0, "true", null, [], {}])] as never); // never a boolean
    case 9: return encodeFrame([rng.pick([Op.ACK, Op.RELEASE]), id, [rng.int(1_000_000), rng.int(1_000_000)]]); // items this session never got
    case 10: return encodeFrame([Op.CANCEL, id, rng.int(1_000_000)]);
    default: return encodeFrame([rng.pick([0, 2, 9, 14, 19, 26, 31, 99, 255, -1]), id, wrong()] as never);
  }
}

async function fuzz(socket: RawSocket, frames: number, make: (id: number) => Uint8Array | string, probe: unknown[]) {
  for (let i = 0; i < frames; i++) {
    socket.sendBytes(make(1000 + i));
    if (i % 200 === 199) await new Promise((r) => setTimeout(r, 0)); // let replies drain
  }
  // A last request on the same socket: its reply comes after every frame above was handled.
  socket.send(probe);
  const last = await socket.reply(probe[1] as number, 20_000);
  // Every refusal is a deliberate one: no frame reached an unexpected failure.
  expect(socket.frames.filter((f) => f[2] === "INTERNAL")).toEqual([]);
  return last;
}

describe("protocol fuzzing", () => {
  test("thousands of bad frames at both object kinds change nothing and break nothing", async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
    const rng = prng(seed);
    const space = uniqueSpace("fuzz");
    const url = workerUrl();

    // State before: a client's dict, pipe and queue, and the global dict and queue.
    const server = await open.server(space);
    const victim = await open.client(space, "victim");
    victim["a"] = 1;
    victim["b"] = [1, "two", { three: 3 }];
    victim.globals["g"] = new Map([["x", 1]]);
    await victim.send("to server");
    await victim.put("local item");
    await victim.globals.put("global item");
    const peer = server.clients.get("victim");
    await peer.ready;
    await peer.send("to client");
    await Promise.all([victim.sync(), server.sync()]);
    const before = { local: victim.dict.toObject(), global: server.dict.toObject() };

    const paths = {
      space: `/v1/spaces/${space}/ws`,
      client: `/v1/spaces/${space}/clients/victim/ws`,
    };
    let sent = 0;
    for (const [kind, path] of Object.entries(paths)) {
      // 1. Sockets that never say HELLO: anything goes, nothing may apply.
      for (let s = 0; s < 3; s++) {
        const socket = await rawSocket(url, `${path}?role=client&id=victim`);
        const last = await fuzz(socket, 400, (id) => anyFrame(rng, id), [Op.DICT_CLEAR, 99_999]);
        expect(last[2], `${kind}, seed ${seed}`).toBe("NOT_READY");
        sent += 401;
        socket.close();
      }
      // 2. Sockets that said HELLO (as the client, and as the server): only harmless frames.
      for (const role of ["client", "server"] as const) {
        const socket = await rawSocket(url, `${path}?role=${role}&id=victim`);
        socket.send([Op.HELLO, 1, { v: PROTOCOL_VERSION, session: `fuzz-${role}-${seed}`, ...(role === "server" ? { token: SERVER_TOKEN } : {}) }]);
        expect((await socket.reply(1))[0]).toBe(100);
        const last = await fuzz(socket, 500, (id) => harmlessFrame(rng, id), [Op.SIZE, 99_999, "queue", "default"]);
        expect(last[0], `${kind} ${role}, seed ${seed}: ${JSON.stringify(last)}`).toBe(100);
        sent += 502;
        socket.close();
      }
    }
    expect(sent).toBeGreaterThan(3000);

    // Both objects still serve the real library...
    const fresh = await open.client(space, "newcomer");
    fresh.globals["after"] = true;
    await fresh.sync();
    await peer.send("still works");
    expect(await victim.recv({ timeout: 5000 })).toBe("to client");
    expect(await victim.recv({ timeout: 5000 })).toBe("still works");

    // ...and hold exactly what they held.
    const server2 = await open.server(space);
    const peer2 = server2.clients.get("victim");
    await peer2.ready;
    expect(peer2.dict.toObject()).toEqual(before.local);
    const globalNow = server2.dict.toObject();
    delete globalNow["after"];
    expect(globalNow).toEqual(before.global);
    expect(await peer2.recv({ timeout: 0 })).toBe("to server");
    await expect(peer2.recv({ timeout: 0 })).rejects.toMatchObject({ name: "TimeoutError" });
    await expect(victim.recv({ timeout: 0 })).rejects.toMatchObject({ name: "TimeoutError" });
    expect(await peer2.get({ timeout: 0 })).toBe("local item");
    await expect(peer2.get({ timeout: 0 })).rejects.toMatchObject({ name: "TimeoutError" });
    expect(await server2.get({ timeout: 0 })).toBe("global item");
    await expect(server2.get({ timeout: 0 })).rejects.toMatchObject({ name: "TimeoutError" });
  });
});
