// The versioned dict of both object kinds: writes and versions, CHANGE
// fan-out, tombstones and delta resumes, and the per-session record of the
// last applied write. Through real sockets, and the VersionedDict class itself.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, test } from "vitest";
import { DEFAULT_LIMITS, ErrorCode, Limits, Msg, Op, type WireEntry } from "../../client/protocol.js";
import { decodeValue, encodeValue } from "../../client/codec.js";
import { VersionedDict, type DictWrite } from "../../worker/dict.js";
import { MAX_REFUSALS, Sessions } from "../../worker/sessions.js";
import { ProtocolError } from "../../worker/errors.js";
import type { SharedObject } from "../../worker/shared-object.js";
import { KINDS, clientTarget, spaceTarget } from "./objects.js";
import { SERVER_TOKEN, entriesOf, fetchWorker, unique, type Received, type Wire } from "./wire.js";

const enc = (value: unknown) => encodeValue(value);

/** A CHANGE frame's entries with values decoded (null for a deletion). */
function changeOf(frame: Received): { version: number; entries: [string, unknown][]; cleared: boolean } {
  const entries = (frame[2] as WireEntry[]).map(([k, v]): [string, unknown] => [k, v === null ? null : decodeValue(v)]);
  return { version: frame[1] as number, entries, cleared: frame[3] as boolean };
}

/** Waits until `wire` has `n` CHANGE frames and returns the n-th. */
function nthChange(wire: Wire, n: number): Promise<Received> {
  return wire.waitFor((f) => f[0] === Msg.CHANGE && wire.changes().indexOf(f) === n - 1, `CHANGE number ${n}`);
}

/** A request the object serves after everything sent before it: frames it caused have arrived. */
async function barrier(wire: Wire): Promise<void> {
  expect((await wire.request(Op.SIZE, "queue", "barrier"))[0]).toBe(Msg.REPLY);
}

describe.each(KINDS)("the %s's dict", (_kind, makeTarget) => {
  test("every write that changes something takes the next version; a no-op takes none", async () => {
    const target = makeTarget();
    const client = await target.client();
    const server = await target.server();
    expect(client.hello.result).toMatchObject({ version: 0, full: true });

    expect(await client.set("a", enc(1))).toEqual([Msg.REPLY, expect.any(Number), 1]);
    expect(await server.set("b", enc(2))).toEqual([Msg.REPLY, expect.any(Number), 2]);
    expect((await client.request(Op.DICT_DELETE, "a"))[2]).toBe(3);
    expect((await client.request(Op.DICT_DELETE, "a"))[2]).toBe(3); // already gone: no new version
    expect((await server.request(Op.DICT_UPDATE, [["x", enc("x")], ["y", enc([1, 2])]]))[2]).toBe(4);
    expect((await client.request(Op.DICT_CLEAR))[2]).toBe(5);
    expect((await client.request(Op.DICT_CLEAR))[2]).toBe(5); // empty already
    expect((await server.request(Op.DICT_UPDATE, []))[2]).toBe(5); // no keys: nothing stored, no version
    expect((await client.set("z", enc({ n: 26 })))[2]).toBe(6);

    const late = await target.client();
    expect(late.hello.result).toMatchObject({ version: 6, full: true });
    expect(entriesOf(late.hello.chunks)).toEqual({ z: { n: 26 } });
    // No-ops sent no CHANGE: the server saw the client's writes (versions 1, 3, 5, 6) once each.
    await barrier(server);
    expect(server.changes().map((f) => f[1])).toEqual([1, 3, 5, 6]);
    // The version is read back from storage by a new instance (as after a wake).
    const version = await runInDurableObject(target.stub, (_instance: SharedObject, state) => new VersionedDict(state.storage.sql).version);
    expect(version).toBe(6);
  });

  test("a CHANGE goes to every other socket that said HELLO, never to the writer", async () => {
    const target = makeTarget();
    const writer = await target.client();
    const others = [await target.server(), await target.client()];
    const silent = await target.raw(); // connected, no HELLO yet

    await writer.set("k", enc("v"));
    for (const other of others) {
      expect(changeOf(await nthChange(other, 1))).toEqual({ version: 1, entries: [["k", "v"]], cleared: false });
    }
    await writer.request(Op.DICT_DELETE, "k");
    await writer.request(Op.DICT_DELETE, "k"); // changes nothing: no CHANGE either
    await writer.request(Op.DICT_UPDATE, [["p", enc(1)], ["q", enc(2)]]);
    await writer.request(Op.DICT_CLEAR);
    for (const other of others) {
      expect(changeOf(await nthChange(other, 2))).toEqual({ version: 2, entries: [["k", null]], cleared: false });
      expect(changeOf(await nthChange(other, 3))).toEqual({ version: 3, entries: [["p", 1], ["q", 2]], cleared: false });
      expect(changeOf(await nthChange(other, 4))).toEqual({ version: 4, entries: [], cleared: true });
      await barrier(other);
      expect(other.changes()).toHaveLength(4);
    }
    await barrier(writer);
    expect(writer.changes()).toEqual([]);

    // The socket without HELLO got nothing; its HELLO brings the current state instead.
    const hello = await silent.hello();
    expect(silent.changes()).toEqual([]);
    expect(hello.result).toMatchObject({ version: 4, full: true });
    expect(hello.chunks.flat()).toEqual([]);
  });

  test("a resume with `since` gets only later changes, deletions as tombstones", async () => {
    const target = makeTarget();
    const writer = await target.server();
    await writer.request(Op.DICT_UPDATE, [["a", enc(1)], ["b", enc(2)], ["c", enc(3)]]); // v1
    await writer.set("b", enc(20)); // v2
    await writer.request(Op.DICT_DELETE, "c"); // v3
    await writer.set("d", enc(4)); // v4

    const delta = await target.client("alice", { since: 1 });
    expect(delta.hello.result).toMatchObject({ version: 4, full: false });
    // In the keys' order, the deletion of c as a null value.
    expect(delta.hello.chunks.flat().map(([k, v]) => [k, v === null ? null : decodeValue(v)])).toEqual([["b", 20], ["c", null], ["d", 4]]);

    const current = await target.client("alice", { since: 4 });
    expect(current.hello.result).toMatchObject({ version: 4, full: false });
    expect(current.hello.chunks.flat()).toEqual([]);

    // Without `since`, or with a version the object never reached: the live keys only.
    for (const hello of [{}, { since: 5 }]) {
      const full = await target.client("alice", hello);
      expect(full.hello.result).toMatchObject({ version: 4, full: true });
      expect(entriesOf(full.hello.chunks)).toEqual({ a: 1, b: 20, d: 4 });
    }

    // A clear reaches a resuming replica as one tombstone per key it removed.
    await writer.request(Op.DICT_CLEAR); // v5
    const afterClear = await target.client("alice", { since: 4 });
    expect(afterClear.hello.result).toMatchObject({ version: 5, full: false });
    expect(entriesOf(afterClear.hello.chunks)).toEqual({ a: null, b: null, d: null });
  });

  test("keys are in the order they were added, a key set again after its deletion last: in a full snapshot, and in a delta, which moves it", async () => {
    const target = makeTarget();
    const writer = await target.server();
    const watcher = await target.client("alice");
    await writer.request(Op.DICT_UPDATE, [["p", enc(1)], ["q", enc(2)], ["r", enc(3)]]); // v1
    await writer.set("q", enc(20)); // v2: in place
    await writer.request(Op.DICT_DELETE, "p"); // v3
    await writer.set("s", enc(4)); // v4
    await writer.set("p", enc(10)); // v5: p comes back, after s
    await writer.set("p", enc(11)); // v6: in place (still after s)
    const order = (chunks: WireEntry[][]) => chunks.flat().map(([k, v]) => [k, v === null ? null : decodeValue(v)]);

    const full = await target.client("alice");
    expect(order(full.hello.chunks)).toEqual([["q", 20], ["r", 3], ["s", 4], ["p", 11]]);
    // A replica of version 2 holds p first: the delta tells it to move p (its deletion, then its value).
    const delta = await target.client("alice", { since: 2 });
    expect(delta.hello.result).toMatchObject({ version: 6, full: false });
    expect(order(delta.hello.chunks)).toEqual([["s", 4], ["p", null], ["p", 11]]);
    // One of version 5 saw p come back: it is where that replica put it, an update only.
    const later = await target.client("alice", { since: 5 });
    expect(order(later.hello.chunks)).toEqual([["p", 11]]);

    // The live changes say as much: applied in order to a Map, they give the snapshot's order.
    await nthChange(watcher, 6);
    const replica = new Map<string, unknown>();
    for (const frame of watcher.changes()) {
      for (const [k, v] of changeOf(frame).entries) v === null ? replica.delete(k) : replica.set(k, v);
    }
    expect([...replica]).toEqual([["q", 20], ["r", 3], ["s", 4], ["p", 11]]);

    // Cleared and set again: in the order of the new sets.
    await writer.request(Op.DICT_CLEAR); // v7
    await writer.request(Op.DICT_UPDATE, [["s", enc(5)], ["q", enc(6)]]); // v8
    expect(order((await target.client("alice")).hello.chunks)).toEqual([["s", 5], ["q", 6]]);
    expect(order((await target.client("alice", { since: 6 })).hello.chunks)).toEqual([
      ["r", null], ["p", null], ["s", null], ["s", 5], ["q", null], ["q", 6],
    ]);
  });

  test("a dict stored before keys kept their order (no born column) gets it on its next start, and keeps its rows", async () => {
    await runInDurableObject(clientTarget().stub, (_instance: SharedObject, state) => {
      const sql = state.storage.sql;
      sql.exec(`CREATE TABLE dict (key TEXT PRIMARY KEY, value BLOB, v INTEGER NOT NULL);
                CREATE INDEX dict_by_version ON dict (v);
                CREATE INDEX dict_tombstones ON dict (v) WHERE value IS NULL;
                CREATE TABLE dict_meta (name TEXT PRIMARY KEY, n INTEGER NOT NULL);`);
      for (const [key, value, v] of [["a", enc(1), 1], ["b", null, 2], ["c", enc(3), 3]] as const) {
        sql.exec("INSERT INTO dict (key, value, v) VALUES (?, ?, ?)", key, value, v);
      }
      const dict = new VersionedDict(sql);
      // (A version of its own: replicas that hold one from before load it all, see the next test.)
      expect([dict.size, dict.version]).toEqual([2, 4]);
      expect(sql.exec("SELECT born FROM dict ORDER BY rowid").toArray().map((row) => row.born)).toEqual([0, 0, 0]);
      dict.apply({ kind: "set", entries: [["b", enc(2)]] }); // v5: b was deleted, so it comes last
      expect(entriesOf([...dict.snapshot()])).toEqual({ a: 1, c: 3, b: 2 });
      expect([...dict.snapshot()].flat().map(([k]) => k)).toEqual(["a", "c", "b"]);
      expect([...dict.snapshot(4)].flat().map(([k, v]) => [k, v && decodeValue(v)])).toEqual([["b", null], ["b", 2]]);
      // A second start finds the column there, and keeps the version.
      expect(new VersionedDict(sql).version).toBe(5);
    });
  });

  test("a replica of a version from before keys kept their order loads it all once the object has it: it may list them otherwise", async () => {
    const target = makeTarget();
    await runInDurableObject(target.stub, (_instance: SharedObject, state) => {
      // As an earlier version left it: p, q, r; p deleted (v4) and set again (v5) in its place.
      state.storage.sql.exec(`CREATE TABLE dict (key TEXT PRIMARY KEY, value BLOB, v INTEGER NOT NULL);
                CREATE INDEX dict_by_version ON dict (v);
                CREATE INDEX dict_tombstones ON dict (v) WHERE value IS NULL;
                CREATE TABLE dict_meta (name TEXT PRIMARY KEY, n INTEGER NOT NULL);`);
      for (const [key, value, v] of [["p", enc("p again"), 5], ["q", enc("q"), 2], ["r", enc("r"), 3]] as const) {
        state.storage.sql.exec("INSERT INTO dict (key, value, v) VALUES (?, ?, ?)", key, value, v);
      }
    });
    // A replica that saw the deletion and the set lists q, r, p; the object lists p first.
    const away = await target.client("alice", { since: 5 });
    expect(away.hello.result).toMatchObject({ version: 6, full: true });
    expect(away.hello.chunks.flat().map(([k]) => k)).toEqual(["p", "q", "r"]);
    // From then on, deltas.
    const back = await target.client("alice", { since: 6 });
    expect(back.hello.result).toMatchObject({ version: 6, full: false });
    expect(back.hello.chunks.flat()).toEqual([]);
  });

  test("a `since` older than the tombstones kept gets a full snapshot", async () => {
    const target = makeTarget();
    // 20,001 keys (v1), one kept key (v2), then each of the 20,001 deleted (v3..v20003).
    // Past 20,000 tombstones the dict keeps the newest 10,000: v10004..v20003, so its floor is v10003.
    const keys = Array.from({ length: 20_001 }, (_, i) => `k${i}`);
    await runInDurableObject(target.stub, (instance: SharedObject) => {
      instance.dict.apply({ kind: "set", entries: keys.map((k) => [k, enc(0)]) });
      instance.dict.apply({ kind: "set", entries: [["keep", enc("kept")]] });
      for (const key of keys) instance.dict.apply({ kind: "delete", key });
      expect(instance.dict.version).toBe(20_003);
    });

    const atFloor = await target.client("alice", { since: 10_003 });
    expect(atFloor.hello.result).toMatchObject({ version: 20_003, full: false });
    const tombstones = atFloor.hello.chunks.flat();
    expect(tombstones).toHaveLength(10_000);
    expect(tombstones.every(([, v]) => v === null)).toBe(true);
    expect(new Set(tombstones.map(([k]) => k))).toEqual(new Set(keys.slice(10_001)));

    for (const since of [10_002, 1]) {
      const behind = await target.client("alice", { since });
      expect(behind.hello.result).toMatchObject({ version: 20_003, full: true });
      expect(entriesOf(behind.hello.chunks)).toEqual({ keep: "kept" });
    }
  });

  test("each session's last applied write id is remembered for its next HELLO", async () => {
    const target = makeTarget();
    const session = crypto.randomUUID();
    const first = await target.client("alice", { session });
    expect(first.hello.result?.lastSeq).toBe(0);

    const set = first.id();
    first.send([Op.DICT_SET, set, "a", enc(1)]);
    expect((await first.reply(set))[0]).toBe(Msg.REPLY);
    const put = first.id();
    first.send([Op.PUT, put, "queue", "default", enc("job")]);
    expect((await first.reply(put))[0]).toBe(Msg.REPLY);
    // Rejected writes were not applied, so they do not count.
    const refused = await first.request(Op.DICT_SET, "x".repeat(Limits.MAX_KEY_BYTES + 1), enc(1));
    expect(refused[2]).toBe(ErrorCode.KEY_TOO_LARGE);

    const again = await target.client("alice", { session });
    expect(again.hello.result?.lastSeq).toBe(put);
    const other = await target.client("alice");
    expect(other.hello.result?.lastSeq).toBe(0);
  });
});

describe("the dict over HTTP", () => {
  test("pages list every key once, the empty key too, and the inspector shows it", async () => {
    const space = unique("pages");
    const auth = { authorization: `Bearer ${SERVER_TOKEN}` };
    const keys = ["", "\u0000", "a", "a\u0000b", "\u{1F600}"];
    for (const key of keys) {
      const put = await fetchWorker(`/v1/spaces/${space}/globals/${encodeURIComponent(key)}`, { method: "PUT", headers: auth, body: JSON.stringify(key) });
      expect(put.status).toBe(200);
    }
    const whole = await fetchWorker(`/v1/spaces/${space}/globals`, { headers: auth });
    expect(Object.keys(await whole.json())).toEqual(keys);
    // One key a page, following Sharevars-Next: the empty key comes first, then each other once.
    const seen: string[] = [];
    let query = "?limit=1";
    for (;;) {
      const res = await fetchWorker(`/v1/spaces/${space}/globals${query}`, { headers: auth });
      seen.push(...Object.keys(await res.json()));
      const next = res.headers.get("sharevars-next");
      if (next === null) break;
      query = `?limit=1&after=${next}`;
    }
    expect(seen).toEqual(keys);
    const summary = await fetchWorker(`/v1/spaces/${space}/summary`, { headers: auth });
    expect(((await summary.json()) as { globals: { dict: [string, string][] } }).globals.dict.map(([k]) => k)).toEqual(keys);
  });
});

test("a JSON page ends where JSON's budget would: plain values a key can show, a page shows too", async () => {
  const space = unique("pages");
  const auth = { authorization: `Bearer ${SERVER_TOKEN}` };
  const body = JSON.stringify(Array(60_000).fill(0)); // 60,001 nodes of JSON: 20 of them pass the 1,000,000 of one text
  const keys = Array.from({ length: 20 }, (_, i) => `k${String(i).padStart(2, "0")}`);
  for (const key of keys) {
    expect((await fetchWorker(`/v1/spaces/${space}/globals/${key}`, { method: "PUT", headers: auth, body })).status).toBe(200);
  }
  const seen: string[] = [];
  let query = "";
  for (let pages = 0; pages < 10; pages++) {
    const res = await fetchWorker(`/v1/spaces/${space}/globals${query}`, { headers: auth });
    expect(res.status).toBe(200);
    const page = (await res.json()) as Record<string, number[]>;
    for (const [key, value] of Object.entries(page)) {
      expect(value).toHaveLength(60_000);
      seen.push(key);
    }
    const next = res.headers.get("sharevars-next");
    if (next === null) break;
    query = `?after=${next}`;
  }
  expect(seen).toEqual(keys);
});

describe("VersionedDict", () => {
  test("tracks size and version, and a new instance on the same storage resumes them", async () => {
    await runInDurableObject(spaceTarget().stub, (_instance: SharedObject, state) => {
      const dict = new VersionedDict(state.storage.sql);
      dict.apply({ kind: "set", entries: [["a", enc(1)], ["b", enc(2)], ["a", enc(3)]] });
      expect([dict.size, dict.version]).toEqual([2, 1]);
      expect(dict.apply({ kind: "delete", key: "a" })).toMatchObject({ version: 2, changed: true, entries: [["a", null]] });
      expect(dict.apply({ kind: "delete", key: "a" })).toMatchObject({ version: 2, changed: false });
      dict.apply({ kind: "set", entries: [["a", enc(4)]] }); // a tombstone comes back to life
      expect([dict.size, dict.version]).toEqual([2, 3]);
      expect(dict.apply({ kind: "clear" })).toMatchObject({ version: 4, cleared: true });
      dict.apply({ kind: "set", entries: [["c", enc(5)]] });

      const woken = new VersionedDict(state.storage.sql);
      expect([woken.size, woken.version]).toEqual([1, 5]);
      const chunks = [...woken.snapshot()];
      expect(entriesOf(chunks)).toEqual({ c: 5 });
    });
  });

  test("a set of a live key writes its row and its index entry by version, no more (rows written are billed); a returning key moves last", async () => {
    await runInDurableObject(clientTarget().stub, (_instance: SharedObject, state) => {
      // The rows each statement wrote and read, as the platform counts (and bills) them.
      let written = 0;
      let read = 0;
      const sql = new Proxy(state.storage.sql, {
        get(target, name) {
          if (name !== "exec") return Reflect.get(target, name, target);
          return (query: string, ...bindings: unknown[]) => {
            const cursor = target.exec(query, ...bindings);
            const rows = cursor.toArray();
            written += cursor.rowsWritten;
            read += cursor.rowsRead;
            return Object.assign(rows[Symbol.iterator](), { rowsWritten: cursor.rowsWritten, rowsRead: cursor.rowsRead, toArray: () => rows, one: () => rows[0] });
          };
        },
      });
      const dict = new VersionedDict(sql);
      dict.apply({ kind: "set", entries: [["a", enc(1)], ["b", enc(2)], ["c", enc(3)]] });
      dict.apply({ kind: "delete", key: "a" });
      const cost = (write: DictWrite) => {
        written = read = 0;
        dict.apply(write);
        return { written, read };
      };
      expect(cost({ kind: "set", entries: [["b", enc(20)]] })).toEqual({ written: 2, read: 1 }); // the row, its entry by version
      expect(cost({ kind: "set", entries: [["d", enc(4)]] })).toEqual({ written: 3, read: 0 }); // and its key's entry
      cost({ kind: "set", entries: [["a", enc(10)]] }); // back from its tombstone
      expect([...dict.snapshot()].flat().map(([k, v]) => [k, v && decodeValue(v)])).toEqual([["b", 20], ["c", 3], ["d", 4], ["a", 10]]);
      expect([...dict.snapshot(2)].flat().map(([k, v]) => [k, v && decodeValue(v)])).toEqual([["b", 20], ["d", 4], ["a", null], ["a", 10]]);
      expect(state.storage.sql.exec("SELECT key, born FROM dict ORDER BY rowid").toArray()).toEqual([
        { key: "b", born: 0 }, { key: "c", born: 0 }, { key: "d", born: 0 }, { key: "a", born: 5 },
      ]);
    });
  });

  test("a delta is read in key order row by row: its first chunk comes before the rest is read (not after all its rows, values too, were sorted)", async () => {
    await runInDurableObject(clientTarget().stub, (_instance: SharedObject, state) => {
      const dict = new VersionedDict(state.storage.sql);
      // 2,000 keys of 10 KB (20 MB, about 80 chunks), v1 to v20; then the first
      // of each set again (in place) and k0_1 deleted and set again (last).
      const value = enc(new Uint8Array(10_000));
      for (let r = 0; r < 20; r++) dict.apply({ kind: "set", entries: Array.from({ length: 100 }, (_, i): [string, Uint8Array] => [`k${r}_${i}`, value]) });
      for (let r = 0; r < 20; r++) dict.apply({ kind: "set", entries: [[`k${r}_0`, enc(r)]] });
      dict.apply({ kind: "delete", key: "k0_1" });
      dict.apply({ kind: "set", entries: [["k0_1", enc("back")]] });

      const read = () => {
        const start = performance.now();
        const snapshot = dict.snapshot(0); // a delta of every row
        const first = snapshot.next().value as WireEntry[];
        const firstMs = performance.now() - start;
        const chunks = [first, ...snapshot];
        return { firstMs, allMs: performance.now() - start, chunks };
      };
      const runs = [read(), read(), read()];
      const { chunks } = runs[0];
      expect(chunks.length).toBeGreaterThan(50);
      const keys = chunks.flat().map(([k]) => k);
      const full = [...dict.snapshot()].flat().map(([k]) => k);
      expect(full.slice(0, 3)).toEqual(["k0_0", "k0_2", "k0_3"]);
      expect(full.at(-1)).toBe("k0_1");
      expect(keys).toEqual([...full.slice(0, -1), "k0_1", "k0_1"]); // the key order, k0_1 moved (its deletion, then its value)
      const firstMs = Math.min(...runs.map((r) => r.firstMs));
      const allMs = Math.min(...runs.map((r) => r.allMs));
      expect(firstMs, `first chunk after ${firstMs.toFixed(1)} ms, all ${allMs.toFixed(1)} ms`).toBeLessThan(allMs / 5);
    });
  });

  test("sets far from the key limit skip the look-up, and the limit still holds exactly", async () => {
    await runInDurableObject(clientTarget().stub, (_instance: SharedObject, state) => {
      const dict = new VersionedDict(state.storage.sql);
      const limits = { ...DEFAULT_LIMITS, MAX_KEYS_PER_DICT: 3 };
      const write = (...keys: string[]) => {
        const w = { kind: "set" as const, entries: keys.map((k): [string, Uint8Array] => [k, enc(k)]) };
        try {
          dict.apply(w, dict.check(w, limits));
          return "ok";
        } catch (error) {
          if (error instanceof ProtocolError) return error.code;
          throw error;
        }
      };
      // a, b, a again: each fits even if new, so none is looked up (the count is an upper bound: 3).
      expect([write("a"), write("b"), write("a")]).toEqual(["ok", "ok", "ok"]);
      expect(dict.apply({ kind: "delete", key: "b" })).toMatchObject({ changed: true });
      dict.apply({ kind: "set", entries: [["b", enc("again")]] }); // a tombstone back to life, not looked up either
      // Near the limit the keys are looked up against an exact count: c fits (a, b, c), d does not, a still does.
      expect([write("c"), write("d"), write("a", "b"), write("c", "d")]).toEqual(["ok", ErrorCode.TOO_MANY_KEYS, "ok", ErrorCode.TOO_MANY_KEYS]);
      expect(dict.size).toBe(3);
      expect(entriesOf([...dict.snapshot()])).toEqual({ a: "a", b: "b", c: "c" });
      // A clear makes every live key a tombstone; clearing again changes nothing.
      expect(dict.apply({ kind: "clear" })).toMatchObject({ cleared: true, changed: true });
      expect(dict.apply({ kind: "clear" })).toMatchObject({ changed: false });
      expect([dict.size, write("x", "y", "z")]).toEqual([0, "ok"]);
      expect(dict.size).toBe(3);
    });
  });

  test("a dict stored by an earlier version (no index of tombstones) gets it on its next start, with exact counts", async () => {
    await runInDurableObject(clientTarget().stub, (_instance: SharedObject, state) => {
      const sql = state.storage.sql;
      sql.exec(`CREATE TABLE dict (key TEXT PRIMARY KEY, value BLOB, v INTEGER NOT NULL);
                CREATE INDEX dict_by_version ON dict (v);
                CREATE TABLE dict_meta (name TEXT PRIMARY KEY, n INTEGER NOT NULL);`);
      for (const [key, value, v] of [["a", enc(1), 1], ["b", null, 2], ["c", enc(3), 3], ["d", null, 4]] as const) {
        sql.exec("INSERT INTO dict (key, value, v) VALUES (?, ?, ?)", key, value, v);
      }
      const dict = new VersionedDict(sql);
      expect(sql.exec("SELECT name FROM sqlite_master WHERE name = 'dict_tombstones'").toArray()).toHaveLength(1);
      expect([dict.size, dict.version]).toEqual([2, 5]); // (one more: it had no born column either)
      const limits = { ...DEFAULT_LIMITS, MAX_KEYS_PER_DICT: 3 };
      const tooMany = { kind: "set" as const, entries: [["b", enc(2)], ["d", enc(4)]] as [string, Uint8Array][] };
      expect(() => dict.check(tooMany, limits)).toThrow(ProtocolError); // a, c, b, d: 4 keys
      const fits = { kind: "set" as const, entries: [["b", enc(2)]] as [string, Uint8Array][] };
      dict.apply(fits, dict.check(fits, limits));
      expect(dict.size).toBe(3);
      expect(new VersionedDict(sql).size).toBe(3);
    });
  });

  test("a dict over a limit lowered later still takes sets of its live keys (they add none), not of new ones", async () => {
    await runInDurableObject(clientTarget().stub, (_instance: SharedObject, state) => {
      const dict = new VersionedDict(state.storage.sql);
      dict.apply({ kind: "set", entries: [["a", enc(1)], ["b", enc(2)], ["c", enc(3)]] });
      const lowered = { ...DEFAULT_LIMITS, MAX_KEYS_PER_DICT: 2 }; // a deployment set LIMIT_MAX_KEYS_PER_DICT = "2"
      const write = (...keys: string[]) => {
        const w = { kind: "set" as const, entries: keys.map((k): [string, Uint8Array] => [k, enc(`${k}!`)]) };
        try {
          dict.apply(w, dict.check(w, lowered));
          return "ok";
        } catch (error) {
          if (error instanceof ProtocolError) return error.code;
          throw error;
        }
      };
      // As the library checks it (SharedDict.set: only a new key needs room): a, and a with b, change values only.
      expect([write("a"), write("a", "b"), write("d"), write("a", "d")]).toEqual(["ok", "ok", ErrorCode.TOO_MANY_KEYS, ErrorCode.TOO_MANY_KEYS]);
      expect(entriesOf([...dict.snapshot()])).toEqual({ a: "a!", b: "b!", c: 3 });
      expect(dict.size).toBe(3);
    });
  });

  test("check rejects a write over the limits and changes nothing", async () => {
    await runInDurableObject(clientTarget().stub, (_instance: SharedObject, state) => {
      const dict = new VersionedDict(state.storage.sql);
      const limits = { ...DEFAULT_LIMITS, MAX_KEYS_PER_DICT: 2, MAX_VALUE_BYTES: 100 };
      dict.apply({ kind: "set", entries: [["a", enc(1)]] });
      const codeOf = (run: () => void): string | undefined => {
        try {
          run();
        } catch (error) {
          if (error instanceof ProtocolError) return error.code;
          throw error;
        }
      };
      // Setting a live key again and one new key fits; two new keys do not.
      expect(codeOf(() => dict.check({ kind: "set", entries: [["a", enc(2)], ["b", enc(2)], ["b", enc(3)]] }, limits))).toBeUndefined();
      expect(codeOf(() => dict.check({ kind: "set", entries: [["b", enc(2)], ["c", enc(3)]] }, limits))).toBe(ErrorCode.TOO_MANY_KEYS);
      expect(codeOf(() => dict.check({ kind: "set", entries: [["b", enc("x".repeat(200))]] }, limits))).toBe(ErrorCode.VALUE_TOO_LARGE);
      expect(codeOf(() => dict.check({ kind: "set", entries: [["b", new Uint8Array([0xff])]] }, limits))).toBe(ErrorCode.BAD_VALUE);
      expect(codeOf(() => dict.check({ kind: "delete", key: "k".repeat(Limits.MAX_KEY_BYTES + 1) }, limits))).toBe(ErrorCode.KEY_TOO_LARGE);
      expect([dict.size, dict.version]).toEqual([1, 1]);
    });
  });
});

describe("Sessions", () => {
  test("stale sessions are pruned by a write at most once an hour, and a restart does not prune again", async () => {
    await runInDurableObject(clientTarget().stub, (_instance: SharedObject, state) => {
      const sql = state.storage.sql;
      // The table of an earlier version, without the time of the last prune.
      sql.exec("CREATE TABLE sessions (session TEXT PRIMARY KEY, seq INTEGER NOT NULL, at INTEGER NOT NULL)");
      const names = () => sql.exec<{ session: string }>("SELECT session FROM sessions ORDER BY session").toArray().map((r) => r.session);
      const weekAndADayAgo = Date.now() - 8 * 24 * 3600 * 1000;
      sql.exec("INSERT INTO sessions (session, seq, at) VALUES ('stale', 1, ?)", weekAndADayAgo);
      new Sessions(sql).record("live", 1); // never pruned: prunes now
      expect(names()).toEqual(["live"]);

      sql.exec("INSERT INTO sessions (session, seq, at) VALUES ('stale', 1, ?)", weekAndADayAgo);
      const woken = new Sessions(sql); // a new instance within the hour
      woken.record("live", 2);
      expect(names()).toEqual(["live", "stale"]);
      expect(woken.lastSeq("stale")).toBe(0); // forgotten all the same

      sql.exec("UPDATE sessions_meta SET n = ? WHERE name = 'pruned_at'", Date.now() - 3600 * 1000 - 1);
      new Sessions(sql).record("live", 3);
      expect(names()).toEqual(["live"]);
    });
  });

  test("refused writes are told from the oldest write in flight on, forgotten below it, and capped per session", async () => {
    await runInDurableObject(clientTarget().stub, (_instance: SharedObject, state) => {
      const sql = state.storage.sql;
      const sessions = new Sessions(sql);
      expect(sessions.refusals("a", 1)).toEqual({ refused: [] }); // no table yet: nothing read, nothing written
      sessions.record("a", 1);
      sessions.refuse("a", 2, ErrorCode.QUEUE_FULL, "full");
      sessions.record("a", 3);
      sessions.refuse("a", 4, ErrorCode.TOO_MANY_KEYS, "too many");
      sessions.refuse("b", 2, ErrorCode.BAD_VALUE, "bad");
      expect(sessions.lastSeq("a")).toBe(3);
      const stored = (session: string) =>
        sql.exec<{ seq: number }>("SELECT seq FROM session_refusals WHERE session = ? ORDER BY seq", session).toArray().map((r) => r.seq);
      // A reconnect with writes 2..4 in flight learns both refusals, keeps them (its HELLO reply may be lost too).
      expect(sessions.refusals("a", 2)).toEqual({ refused: [[2, ErrorCode.QUEUE_FULL, "full"], [4, ErrorCode.TOO_MANY_KEYS, "too many"]] });
      expect(stored("a")).toEqual([2, 4]);
      // The next one has only write 4 in flight: 2 is forgotten; with none in flight, all are.
      expect(new Sessions(sql).refusals("a", 3)).toEqual({ refused: [[4, ErrorCode.TOO_MANY_KEYS, "too many"]] });
      expect(stored("a")).toEqual([4]);
      expect(sessions.refusals("a", undefined)).toEqual({ refused: [] });
      expect(stored("a")).toEqual([]);
      expect(stored("b")).toEqual([2]); // another session's are its own
      // At most MAX_REFUSALS per session, the newest; a HELLO learns up to which write they were forgotten.
      for (let i = 1; i <= MAX_REFUSALS + 5; i++) sessions.refuse("c", i * 2, ErrorCode.QUEUE_FULL, "full");
      const kept = stored("c");
      expect(kept.length).toBe(MAX_REFUSALS);
      expect(kept[0]).toBe(12);
      const told = sessions.refusals("c", 4);
      expect([told.refused.length, told.refused[0][0], told.forgotten]).toEqual([MAX_REFUSALS, 12, [2, 10]]);
      expect(sessions.refusals("c", 11).forgotten).toBeUndefined(); // nothing in flight is that old any more
      expect(sql.exec("SELECT count(*) AS n FROM session_refusals_forgotten").one().n).toBe(0);
      // Stale ones go with the stale sessions.
      sql.exec("UPDATE session_refusals SET at = ? WHERE session = 'b'", Date.now() - 8 * 24 * 3600 * 1000);
      sql.exec("UPDATE sessions_meta SET n = ? WHERE name = 'pruned_at'", Date.now() - 3600 * 1000 - 1);
      new Sessions(sql).record("a", 5);
      expect(stored("b")).toEqual([]);
    });
  });
});
