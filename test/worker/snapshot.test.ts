// Snapshot chunking: a dict far bigger than one frame arrives in several
// SNAPSHOT frames, each under the frame limit, that reassemble exactly.
import { describe, expect, test } from "vitest";
import { Limits, Msg, Op, type WireEntry } from "../../client/protocol.js";
import { encodeValue } from "../../client/codec.js";
import { KINDS } from "./objects.js";
import type { Wire } from "./wire.js";

/** A value of about `bytes` encoded bytes whose content depends on `seed`. */
function bulky(seed: number, bytes: number): Uint8Array {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (i * 31 + seed * 7) & 0xff;
  return encodeValue(data);
}

async function fingerprint(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** key -> SHA-256 of the encoded value, for entries sent or received. */
async function fingerprints(entries: Iterable<[string, Uint8Array | null]>): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  for (const [key, value] of entries) out.set(key, value === null ? null : await fingerprint(value));
  return out;
}

/** The sizes of the SNAPSHOT frames `wire` received. */
function snapshotFrameSizes(wire: Wire): number[] {
  return wire.frames.flatMap((f, i) => (f[0] === Msg.SNAPSHOT ? [wire.sizes[i]] : []));
}

describe.each(KINDS)("the %s's snapshot", (_kind, makeTarget) => {
  test("of 6 MB in 1 MB values comes in frames under the frame limit and reassembles exactly", async () => {
    const target = makeTarget();
    const writer = await target.server();
    const sent: [string, Uint8Array][] = [];
    for (let i = 0; i < 6; i++) {
      const entry: [string, Uint8Array] = [`big${i}`, bulky(i, 1_000_000)];
      expect((await writer.set(...entry))[0]).toBe(Msg.REPLY);
      sent.push(entry);
    }

    const reader = await target.client();
    expect(reader.hello.result).toMatchObject({ version: 6, full: true });
    const sizes = snapshotFrameSizes(reader);
    expect(sizes.length).toBeGreaterThanOrEqual(6);
    expect(sizes.every((size) => size <= Limits.MAX_FRAME_BYTES)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBeGreaterThan(6_000_000);
    const received = reader.hello.chunks.flat();
    expect(received).toHaveLength(6);
    expect(await fingerprints(received)).toEqual(await fingerprints(sent));
  });

  test("of many small values comes in frames of about SNAPSHOT_CHUNK_BYTES; so does a delta", async () => {
    const target = makeTarget();
    const writer = await target.server();
    const sent: [string, Uint8Array][] = [];
    // 400 values of 16 KB (6.4 MB), written 40 to an update (under one frame each).
    for (let batch = 0; batch < 10; batch++) {
      const entries = Array.from({ length: 40 }, (_, i): [string, Uint8Array] => [`k${batch * 40 + i}`, bulky(batch * 40 + i, 16_000)]);
      expect((await writer.request(Op.DICT_UPDATE, entries))[0]).toBe(Msg.REPLY);
      sent.push(...entries);
    }
    const full = await target.client();
    const sizes = snapshotFrameSizes(full);
    expect(sizes.length).toBeGreaterThanOrEqual(Math.floor(6_400_000 / Limits.SNAPSHOT_CHUNK_BYTES));
    // A chunk stops before the entry that would take it over the bound.
    expect(Math.max(...sizes)).toBeLessThanOrEqual(Limits.SNAPSHOT_CHUNK_BYTES + 64);
    expect(await fingerprints(full.hello.chunks.flat())).toEqual(await fingerprints(sent));
    // Every chunk belongs to the HELLO and comes before its reply.
    const helloReply = full.frames.findIndex((f) => f[0] === Msg.REPLY);
    expect(full.frames.slice(0, helloReply).every((f) => f[0] === Msg.SNAPSHOT && f[1] === full.frames[helloReply][1])).toBe(true);

    // A delta of the last 4 updates (160 values, 2.5 MB) is chunked the same way.
    const delta = await target.client("alice", { since: 6 });
    expect(delta.hello.result).toMatchObject({ version: 10, full: false });
    expect(snapshotFrameSizes(delta).length).toBeGreaterThanOrEqual(Math.floor(2_560_000 / Limits.SNAPSHOT_CHUNK_BYTES));
    expect(await fingerprints(delta.hello.chunks.flat())).toEqual(await fingerprints(sent.slice(240)));
  });

  test("with tombstones in a delta keeps the keys' order across chunks; a key that came back is its deletion and its value, in one chunk", async () => {
    const target = makeTarget();
    const writer = await target.server();
    for (let i = 0; i < 4; i++) await writer.set(`v${i}`, bulky(i, 400_000)); // v1..v4
    await writer.request(Op.DICT_DELETE, "v0"); // v5
    await writer.set("v0", bulky(9, 400_000)); // v6
    await writer.request(Op.DICT_DELETE, "v1"); // v7
    const delta = await target.client("alice", { since: 2 });
    const keys = delta.hello.chunks.flat().map(([key, value]: WireEntry) => [key, value === null]);
    // v0 came back after the others (last); v1's row is a tombstone in its place.
    expect(keys).toEqual([["v1", true], ["v2", false], ["v3", false], ["v0", true], ["v0", false]]);
    // Each 400 KB value is over the chunk bound, so it fills a chunk: the tombstone before them gets its own.
    expect(delta.hello.chunks.map((chunk) => chunk.length)).toEqual([1, 1, 1, 2]);
  });
});
