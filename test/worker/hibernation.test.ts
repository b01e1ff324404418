// Hibernation: the runtime tears the object's instance down while its
// sockets stay open (evictDurableObject's default). The new instance knows
// only SQLite and each socket's attachment and tags, and must still serve the
// receivers that were waiting, the leases it gave, and each socket's identity.
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, test } from "vitest";
import { Msg, Op } from "../../client/protocol.js";
import { encodeValue } from "../../client/codec.js";
import type { SharedObject } from "../../worker/shared-object.js";
import { KINDS, clientTarget, spaceTarget, type Stub } from "./objects.js";
import { ack, closeHolding, got, put, putAndTake, size, startGet, stillWaiting, storedItems, storedWaiters, take, waitingGet } from "./channels.js";
import type { Wire } from "./wire.js";

const instances = new WeakSet<object>();

/** Ends every hold now, as if the grace period had passed. */
function endHolds(stub: Stub): Promise<void> {
  return runInDurableObject(stub, (_instance: SharedObject, state) => {
    state.storage.sql.exec("UPDATE fifo_entries SET held_until = ? WHERE held_until IS NOT NULL", Date.now() - 1);
  });
}

/** Evicts the object and proves it: the instance after is not the one before. */
async function hibernate(stub: Stub, wires: Wire[]): Promise<void> {
  await runInDurableObject(stub, (instance: SharedObject) => void instances.add(instance));
  await evictDurableObject(stub);
  // The sockets stayed open through it (a close would fail the waits below at once).
  for (const wire of wires) expect(wire.ws.readyState).toBe(WebSocket.READY_STATE_OPEN);
  expect(await runInDurableObject(stub, (instance: SharedObject) => instances.has(instance))).toBe(false);
}

describe.each(KINDS)("the %s after hibernating", (_kind, makeTarget) => {
  test("delivers to a receiver that was waiting when it hibernated", async () => {
    const target = makeTarget();
    const receiver = await target.client();
    const producer = await target.server();
    const get = await waitingGet(receiver);

    await hibernate(target.stub, [receiver, producer]);
    expect(await storedWaiters(target.stub)).toBe(1); // the wait lives with its socket, not only in memory
    await put(producer, "after the nap");
    expect((await got(receiver, get))?.value).toBe("after the nap");
    expect(await storedWaiters(target.stub)).toBe(0);
  });

  test("serves its waiting receivers first come, first served", async () => {
    const target = makeTarget();
    const receivers = [await target.client(), await target.server(), await target.client()];
    const gets: number[] = [];
    for (const wire of receivers) {
      gets.push(startGet(wire));
      expect(await stillWaiting(wire, gets.at(-1)!)).toBe(true);
    }
    const producer = await target.server();
    await hibernate(target.stub, [...receivers, producer]);
    await put(producer, 1);
    await put(producer, 2);
    expect((await got(receivers[0], gets[0]))?.value).toBe(1);
    expect((await got(receivers[1], gets[1]))?.value).toBe(2);
    expect(await stillWaiting(receivers[2], gets[2])).toBe(true);
  });

  test("keeps more waits of one socket than its attachment holds, in order", async () => {
    const target = makeTarget();
    const receiver = await target.client();
    const other = await target.server();
    // Sixteen waits on one socket (the first with it, the rest as rows), some with long names, among another socket's.
    const onQx: [typeof receiver, number][] = [];
    const onLong: number[] = [];
    for (let i = 0; i < 12; i++) {
      onQx.push([receiver, startGet(receiver, "queue", "qx")]);
      if (i % 3 === 0) onLong.push(startGet(receiver, "queue", `long${i}`.padEnd(150, "x")));
      expect(await stillWaiting(receiver, onQx.at(-1)![1])).toBe(true); // in the object before the other's next
      if (i % 4 === 0) {
        onQx.push([other, startGet(other, "queue", "qx")]);
        expect(await stillWaiting(other, onQx.at(-1)![1])).toBe(true);
      }
    }
    expect(await storedWaiters(target.stub)).toBe(onQx.length + onLong.length);
    await hibernate(target.stub, [receiver, other]);
    expect(await storedWaiters(target.stub)).toBe(onQx.length + onLong.length);
    const producer = await target.server();
    for (let i = 0; i < onQx.length; i++) await put(producer, i, "queue", "qx");
    for (let i = 0; i < onQx.length; i++) expect((await got(onQx[i][0], onQx[i][1]))?.value).toBe(i);
    for (const id of onLong) expect(await stillWaiting(receiver, id)).toBe(true);
    expect(await storedWaiters(target.stub)).toBe(onLong.length);
  });

  test("keeps items leased to a hibernated socket leased to it", async () => {
    const target = makeTarget();
    const receiver = await target.client();
    const other = await target.server();
    const item = await putAndTake(other, receiver, "mine");
    await hibernate(target.stub, [receiver, other]);
    expect(await take(other)).toBeNull(); // a socket event: the new instance has started
    // Still a lease, not a hold that would run out: however long it sleeps, nobody else gets it.
    expect(await storedItems(target.stub)).toEqual([expect.objectContaining({ seq: item.seq, lease: expect.any(String), held_until: null })]);
    await endHolds(target.stub);
    expect(await take(other)).toBeNull();
    expect(await ack(receiver, [item.seq])).toBe(1);
  });

  test("knows each socket by its attachment: session, role, and who the writer is", async () => {
    const target = makeTarget();
    const session = crypto.randomUUID();
    const writer = await target.client("alice", { session });
    const watcher = await target.server();
    await hibernate(target.stub, [writer, watcher]);

    const id = writer.id();
    writer.send([Op.DICT_SET, id, "k", encodeValue("v")]);
    expect(await writer.reply(id)).toEqual([Msg.REPLY, id, 1]); // still past HELLO: no NOT_READY
    await watcher.waitFor((f) => f[0] === Msg.CHANGE, "the CHANGE");
    await size(writer); // a round trip: any CHANGE to the writer would be here by now
    expect(writer.changes()).toEqual([]);
    const again = await target.client("alice", { session });
    expect(again.hello.result?.lastSeq).toBe(id);
  });

  test("keeps a receive after a CANCEL that came too late waiting until that GET's item is back", async () => {
    const target = makeTarget();
    const consumer = await target.client();
    const producer = await target.server();
    const first = await waitingGet(consumer);
    await put(producer, "a"); // leased to the first GET, its reply on its way
    await put(producer, "b");
    expect((await consumer.request(Op.CANCEL, first))[2]).toBe(false);
    const a = (await got(consumer, first))!;
    const second = await waitingGet(consumer);
    // The item's way back is slow (a stalled link): the object hibernates meanwhile.
    await hibernate(target.stub, [consumer, producer]);
    await put(producer, "c");
    expect(await stillWaiting(consumer, second)).toBe(true);
    expect(await take(consumer)).toBeNull();
    expect(await consumer.request(Op.RELEASE, [a.seq])).toEqual([Msg.REPLY, expect.any(Number), 1]);
    expect(await got(consumer, second)).toEqual(a);
  });

  test("runs the hold alarm for a receiver waiting behind a hold", async () => {
    const target = makeTarget();
    const receiver = await target.client();
    const waiter = await target.server();
    const x = await putAndTake(waiter, receiver, "x");
    const get = startGet(waiter);
    await closeHolding(receiver, target.stub, [x.seq]);
    await hibernate(target.stub, [waiter]);

    await endHolds(target.stub);
    expect(await runDurableObjectAlarm(target.stub)).toBe(true);
    expect(await got(waiter, get)).toEqual(x);
  });
});

test("a pipe receiver waiting when the client object hibernated gets the other end's item", async () => {
  const target = clientTarget();
  const client = await target.client();
  const server = await target.server();
  const get = await waitingGet(client, "pipe", "chat");
  await hibernate(target.stub, [client, server]);
  await put(server, "hello from the server", "pipe", "chat");
  expect((await got(client, get))?.value).toBe("hello from the server");
});

test("the space object still finds its server sockets by tag after hibernating", async () => {
  const target = spaceTarget();
  const server = await target.server();
  await hibernate(target.stub, [server]);
  const bob = await target.client("bob");
  expect((await server.waitFor((f) => f[0] === Msg.CLIENT_ONLINE, "CLIENT_ONLINE")).slice(0, 3)).toEqual([Msg.CLIENT_ONLINE, "bob", 1]);
  await hibernate(target.stub, [server, bob]);
  bob.close();
  expect(await server.waitFor((f) => f[0] === Msg.CLIENT_OFFLINE, "CLIENT_OFFLINE")).toEqual([Msg.CLIENT_OFFLINE, "bob"]);
});
