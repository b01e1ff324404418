// Storage outlives the object: after the runtime tears an instance down
// (eviction, here with every socket closed as in a restart), a new instance
// serves the same dict, versions, sessions and queued items from SQLite alone.
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, test } from "vitest";
import { Op } from "../../client/protocol.js";
import { encodeValue } from "../../client/codec.js";
import type { SharedObject } from "../../worker/shared-object.js";
import { KINDS, dumpStorage, type Stub } from "./objects.js";
import { entriesOf } from "./wire.js";
import { ack, got, put, putAndTake, size, startGet, storedItems, storedWaiters, take, waitingGet } from "./channels.js";

const instances = new WeakSet<object>();

/** Remembers the running instance; true if it is one seen before (it was not torn down). */
function sameInstanceAsBefore(stub: Stub): Promise<boolean> {
  return runInDurableObject(stub, (instance: SharedObject) => {
    const seen = instances.has(instance);
    instances.add(instance);
    return seen;
  });
}

describe.each(KINDS)("the %s after a restart", (_kind, makeTarget) => {
  test("serves the same dict, version, sessions and queued items", async () => {
    const target = makeTarget();
    const session = crypto.randomUUID();
    const writer = await target.client("alice", { session });
    await writer.request(Op.DICT_UPDATE, [["a", encodeValue(1)], ["b", encodeValue({ deep: [1, 2] })], ["c", encodeValue("c")]]);
    await writer.request(Op.DICT_DELETE, "c");
    await put(writer, "first");
    await put(writer, "second");
    const lastWrite = writer.id();
    writer.send([Op.DICT_SET, lastWrite, "d", encodeValue(new Date(0))]);
    await writer.reply(lastWrite);
    const stored = await dumpStorage(target.stub);
    expect(await sameInstanceAsBefore(target.stub)).toBe(false);

    await evictDurableObject(target.stub, { webSockets: "close" });
    await writer.closed;
    expect(await sameInstanceAsBefore(target.stub)).toBe(false); // a new instance
    expect(await dumpStorage(target.stub)).toEqual(stored);

    const reader = await target.client("alice", { session });
    expect(reader.hello.result).toMatchObject({ version: 3, full: true, lastSeq: lastWrite });
    expect(entriesOf(reader.hello.chunks)).toEqual({ a: 1, b: { deep: [1, 2] }, d: new Date(0) });
    const resumed = await target.server({ since: 1 });
    expect(resumed.hello.result).toMatchObject({ version: 3, full: false });
    expect(entriesOf(resumed.hello.chunks)).toEqual({ c: null, d: new Date(0) });

    expect(await size(reader)).toBe(2);
    expect((await take(reader))?.value).toBe("first");
    expect((await take(reader))?.value).toBe("second");
    // Versions go on from the stored one.
    expect((await reader.set("e", encodeValue(5)))[2]).toBe(4);
  });

  // A restart drops every socket without a close event: the new instance
  // must release what the vanished sockets held, or those items stay leased
  // to nobody forever (invisible to SIZE, never delivered again).
  test("items leased to sockets lost in a restart are held for their session, then free", async () => {
    const target = makeTarget();
    const session = crypto.randomUUID();
    const receiver = await target.client("alice", { session });
    const waiter = await target.server();
    await put(receiver, "x");
    await put(receiver, "y");
    const x = (await take(receiver))!;
    startGet(waiter, "queue", "other"); // a wait that ends with its socket
    await evictDurableObject(target.stub, { webSockets: "close" });
    await Promise.all([receiver.closed, waiter.closed]);

    const stranger = await target.server();
    expect(await storedItems(target.stub)).toEqual([
      expect.objectContaining({ seq: x.seq, lease: null, session, held_until: expect.any(Number) }),
      expect.objectContaining({ lease: null, held_until: null }),
    ]);
    expect(await storedWaiters(target.stub)).toBe(0);
    expect(await size(stranger)).toBe(1); // SIZE counts what may be taken now: x is held
    expect((await take(stranger))?.value).toBe("y"); // x is held for alice's session
    const back = await target.client("alice", { session });
    expect(await take(back)).toEqual(x);
    expect(await ack(back, [x.seq])).toBe(1);
  });

  test("an item leased to a lost socket goes to a waiting receiver once the hold ends", async () => {
    const target = makeTarget();
    const receiver = await target.client();
    const x = await putAndTake(receiver, receiver, "x");
    await evictDurableObject(target.stub, { webSockets: "close" });
    await receiver.closed;

    const waiter = await target.server();
    const get = await waitingGet(waiter);
    await runInDurableObject(target.stub, (_instance: SharedObject, state) => {
      state.storage.sql.exec("UPDATE fifo_entries SET held_until = ?", Date.now() - 1);
    });
    expect(await runDurableObjectAlarm(target.stub)).toBe(true);
    expect(await got(waiter, get)).toEqual(x);
  });
});

// The layout of queues and pipes before 2026-11-25: a rowid table numbered by
// AUTOINCREMENT, with an index by fifo and one by lease.
const LEGACY_FIFO = `
CREATE TABLE fifo_items (seq INTEGER PRIMARY KEY AUTOINCREMENT, fifo TEXT NOT NULL, value BLOB NOT NULL, lease TEXT, session TEXT, held_until INTEGER);
CREATE INDEX fifo_items_by_fifo ON fifo_items (fifo, seq);
CREATE INDEX fifo_items_by_lease ON fifo_items (lease);
`;

describe.each(KINDS)("queued items of the %s", (_kind, makeTarget) => {
  test("stored by an earlier version move to the current layout on first use: same items, order, numbers, deliveries and holds", async () => {
    const target = makeTarget();
    const session = crypto.randomUUID();
    const later = Date.now() + 60_000;
    await runInDurableObject(target.stub, (_instance: SharedObject, state) => {
      const sql = state.storage.sql;
      sql.exec(LEGACY_FIFO);
      const insert = (fifo: string, value: unknown, lease: string | null = null, owner: string | null = null, heldUntil: number | null = null) =>
        sql.exec("INSERT INTO fifo_items (fifo, value, lease, session, held_until) VALUES (?, ?, ?, ?, ?)", fifo, encodeValue(value), lease, owner, heldUntil);
      insert("queue:default", "a"); // 1
      insert("queue:default", "b", "a-socket-lost-in-a-restart", session); // 2: delivered, not acknowledged
      insert("queue:default", "taken"); // 3: taken and acknowledged below (a gap in the numbers)
      insert("queue:default", "c"); // 4
      insert("queue:other", "x"); // 5
      insert("queue:default", "d", null, session, later); // 6: held for its session
      insert("queue:default", "gone"); // 7: taken and acknowledged below; its number was issued
      sql.exec("DELETE FROM fifo_items WHERE seq IN (3, 7)");
    });

    const consumer = await target.client("alice");
    expect(await size(consumer)).toBe(2); // "b" and "d" are held for the session they were delivered to
    expect(await take(consumer)).toEqual({ seq: 1, value: "a" });
    expect(await take(consumer)).toEqual({ seq: 4, value: "c" });
    expect(await take(consumer)).toBeNull();
    expect(await take(consumer, "queue", "other")).toEqual({ seq: 5, value: "x" });
    await put(consumer, "new");
    const fresh = (await take(consumer))!;
    expect(fresh.value).toBe("new");
    expect(fresh.seq).toBeGreaterThan(7); // above every number AUTOINCREMENT issued
    const owner = await target.client("alice", { session });
    expect(await take(owner)).toEqual({ seq: 2, value: "b" });
    expect(await take(owner)).toEqual({ seq: 6, value: "d" });
    expect(await ack(owner, [2, 6])).toBe(2);

    const tables = await runInDurableObject(target.stub, (_instance: SharedObject, state) =>
      state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").toArray().map((t) => t.name));
    expect(tables).toContain("fifo_entries");
    expect(tables).not.toContain("fifo_items");
  });

  // After a rollback to a version before the move and a roll forward again,
  // both layouts hold items, and the old one numbered its items from 1 again.
  test("written by an earlier version after the move come after the others, with new numbers", async () => {
    const target = makeTarget();
    const session = crypto.randomUUID();
    const before = await target.client("alice", { session });
    await put(before, "a");
    await put(before, "b");
    await put(before, "z", "queue", "other");
    const z = (await take(before, "queue", "other"))!; // delivered, not acknowledged
    await runInDurableObject(target.stub, (_instance: SharedObject, state) => {
      const sql = state.storage.sql;
      sql.exec(LEGACY_FIFO);
      for (const [fifo, value] of [["queue:default", "old-1"], ["queue:other", "old-2"], ["queue:default", "old-3"]]) {
        sql.exec("INSERT INTO fifo_items (fifo, value) VALUES (?, ?)", fifo, encodeValue(value)); // numbered 1, 2, 3
      }
    });
    await evictDurableObject(target.stub, { webSockets: "close" });
    await before.closed;

    const owner = await target.client("alice", { session });
    const all = [];
    for (let item = await take(owner); item; item = await take(owner)) all.push(item);
    expect(all.map((item) => item.value)).toEqual(["a", "b", "old-1", "old-3"]);
    const others = [];
    for (let item = await take(owner, "queue", "other"); item; item = await take(owner, "queue", "other")) others.push(item);
    expect(others.map((item) => item.value)).toEqual(["z", "old-2"]); // z again: its socket closed, its session is back
    expect(others[0].seq).toBe(z.seq);
    const kept = [all[0], all[1], others[0]].map((item) => item.seq);
    const moved = [all[2], all[3], others[1]].map((item) => item.seq);
    expect(Math.min(...moved)).toBeGreaterThan(Math.max(...kept));
    expect(new Set(moved).size).toBe(3);
    expect(await ack(owner, [z.seq])).toBe(1);
    expect(await storedItems(target.stub)).toHaveLength(5);
  });

  test("numbers are never used twice: not after every item left, not across restarts, not past a reserved block", async () => {
    const target = makeTarget();
    const client = await target.client("alice");
    await put(client, "first");
    const first = (await take(client))!;
    expect(await ack(client, [first.seq])).toBe(1); // the fifo is empty again
    await evictDurableObject(target.stub, { webSockets: "close" });
    await client.closed;

    // More puts than one reserved block of numbers, then another restart.
    const seqs = await runInDurableObject(target.stub, (instance: SharedObject) => {
      const numbers: number[] = [];
      for (let i = 0; i < 1500; i++) {
        instance.fifo.put("queue:many", encodeValue(i));
        numbers.push(instance.fifo.take("queue:many", { socket: "s", session: "t" })!.seq);
      }
      instance.fifo.ack("t", numbers);
      return numbers;
    });
    expect(seqs[0]).toBeGreaterThan(first.seq);
    expect(seqs.every((seq, i) => i === 0 || seq > seqs[i - 1])).toBe(true);
    await evictDurableObject(target.stub);

    const again = await target.client("alice");
    await put(again, "last");
    expect((await take(again))!.seq).toBeGreaterThan(seqs.at(-1)!);
  });
});
