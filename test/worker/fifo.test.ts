// The durable FIFO behind queues (both object kinds): order, waiting GETs
// served first come first served, leased delivery, ACK, CANCEL, RELEASE, SIZE.
import { describe, expect, test } from "vitest";
import { ErrorCode, Limits, Msg, Op } from "../../client/protocol.js";
import { KINDS } from "./objects.js";
import { ack, got, put, putAndTake, size, startGet, stillWaiting, storedItems, storedWaiters, take, until, waitingGet } from "./channels.js";

describe.each(KINDS)("queues of the %s", (_kind, makeTarget) => {
  test("items come out in the order they went in, each once", async () => {
    const target = makeTarget();
    const producer = await target.server();
    const consumer = await target.client();
    for (const value of ["a", "b", "c"]) await put(producer, value);
    const items = [await take(consumer), await take(consumer), await take(consumer)];
    expect(items.map((item) => item?.value)).toEqual(["a", "b", "c"]);
    expect(items[0]!.seq < items[1]!.seq && items[1]!.seq < items[2]!.seq).toBe(true);
    expect(await take(consumer)).toBeNull();
    expect(await take(producer)).toBeNull();
  });

  test("a client may get its own item; queues of different names are separate", async () => {
    const target = makeTarget();
    const client = await target.client();
    await put(client, "mine", "queue", "jobs");
    expect(await take(client, "queue", "other")).toBeNull();
    expect(await size(client, "queue", "jobs")).toBe(1);
    expect((await take(client, "queue", "jobs"))?.value).toBe("mine");
  });

  test("a waiting GET is answered when an item arrives", async () => {
    const target = makeTarget();
    const consumer = await target.client();
    const producer = await target.server();
    const get = await waitingGet(consumer);
    await put(producer, { job: 1 });
    expect((await got(consumer, get))?.value).toEqual({ job: 1 });
  });

  test("waiting GETs are served first come, first served, one item each", async () => {
    const target = makeTarget();
    const waiters = [await target.client(), await target.server(), await target.client()];
    const gets: number[] = [];
    for (const wire of waiters) {
      gets.push(startGet(wire));
      expect(await stillWaiting(wire, gets.at(-1)!)).toBe(true); // registered before the next one
    }
    const producer = await target.server();
    await put(producer, 1);
    await put(producer, 2);
    expect((await got(waiters[0], gets[0]))?.value).toBe(1);
    expect((await got(waiters[1], gets[1]))?.value).toBe(2);
    expect(await stillWaiting(waiters[2], gets[2])).toBe(true);
    await put(producer, 3);
    expect((await got(waiters[2], gets[2]))?.value).toBe(3);
    expect(await storedWaiters(target.stub)).toBe(0);
  });

  test("a leased item goes to nobody else; ACK removes it for good", async () => {
    const target = makeTarget();
    const first = await target.client();
    const second = await target.server();
    const item = await putAndTake(second, first, "only");
    expect(item.value).toBe("only");
    expect(await size(second)).toBe(0); // delivered items are not waiting
    expect(await take(second)).toBeNull();
    const get = startGet(second);
    // Another session cannot acknowledge (and so delete) an item it was not given.
    expect(await ack(second, [item.seq])).toBe(0);
    expect(await storedItems(target.stub)).toHaveLength(1);
    expect(await ack(first, [item.seq])).toBe(1);
    expect(await ack(first, [item.seq])).toBe(0);
    expect(await storedItems(target.stub)).toEqual([]);
    expect(await stillWaiting(second, get)).toBe(true);
  });

  test("a quiet ACK gets no reply of its own and is stored before the reply to the next request", async () => {
    const target = makeTarget();
    const wire = await target.client();
    await put(wire, "a");
    await put(wire, "b");
    const a = (await take(wire))!;
    const quiet = wire.id();
    wire.send([Op.ACK, quiet, [a.seq], true]);
    expect(await size(wire)).toBe(1); // served after the ACK
    expect(wire.frames.some((f) => f[1] === quiet)).toBe(false);
    expect((await storedItems(target.stub)).map((i) => i.seq)).not.toContain(a.seq);
    // A quiet ACK of what this session was not given changes nothing, silently too.
    const b = (await take(wire))!;
    const other = await target.server();
    other.send([Op.ACK, other.id(), [b.seq], true]);
    expect(await size(other)).toBe(0);
    expect((await storedItems(target.stub)).map((i) => i.seq)).toContain(b.seq);
  });

  test("CANCEL ends a waiting GET with null, and a later item is not lost to it", async () => {
    const target = makeTarget();
    const consumer = await target.client();
    const get = startGet(consumer);
    const cancel = await consumer.request(Op.CANCEL, get);
    expect(cancel).toEqual([Msg.REPLY, expect.any(Number), true]);
    expect(await got(consumer, get)).toBeNull();
    expect(await storedWaiters(target.stub)).toBe(0);

    const producer = await target.server();
    await put(producer, "after the cancel");
    expect(await size(producer)).toBe(1);
    expect((await take(producer))?.value).toBe("after the cancel");
    // The cancelled GET got exactly one reply (the null).
    expect(consumer.frames.filter((f) => f[1] === get)).toHaveLength(1);
  });

  test("CANCEL of a GET already served says false; RELEASE gives its item back in line", async () => {
    const target = makeTarget();
    const consumer = await target.client();
    const producer = await target.server();
    await put(producer, "x");
    await put(producer, "y");
    const get = startGet(consumer);
    const item = (await got(consumer, get))!;
    expect(item.value).toBe("x");
    // The GET was answered before the CANCEL arrived (the library then releases what it no longer wants).
    expect((await consumer.request(Op.CANCEL, get))[2]).toBe(false);
    expect(consumer.frames.filter((f) => f[1] === get)).toHaveLength(1); // no second (null) reply
    // Another session cannot release it; its own session can, and it goes back before y.
    expect((await producer.request(Op.RELEASE, [item.seq]))[2]).toBe(0);
    expect((await consumer.request(Op.RELEASE, [item.seq]))[2]).toBe(1);
    expect(await size(producer)).toBe(2);
    expect((await take(producer))).toEqual(item);
    expect((await take(producer))?.value).toBe("y");
  });

  test("a GET after a CANCEL that came too late waits for that GET's item to come back, and gets it first", async () => {
    const target = makeTarget();
    const consumer = await target.client();
    const producer = await target.server();
    const first = await waitingGet(consumer);
    await put(producer, "a"); // leased to the first GET, its reply on its way
    await put(producer, "b");
    // The library gave up the first GET (an abort) and its next receive
    // leaves before the first's item reaches it: that item comes back
    // (RELEASE) behind the new GET, and must still be received first.
    expect((await consumer.request(Op.CANCEL, first))[2]).toBe(false);
    const second = startGet(consumer);
    const a = (await got(consumer, first))!;
    expect(a.value).toBe("a");
    expect(await stillWaiting(consumer, second)).toBe(true);
    // Until the item comes back, nothing else is served to that GET either.
    await put(producer, "c");
    expect(await stillWaiting(consumer, second)).toBe(true);
    expect(await consumer.request(Op.RELEASE, [a.seq])).toEqual([Msg.REPLY, expect.any(Number), 1]);
    expect(await got(consumer, second)).toEqual(a);
    await ack(consumer, [a.seq]);
    expect((await take(consumer))?.value).toBe("b");
    expect((await take(consumer))?.value).toBe("c");
  });

  test("after a late CANCEL, an ACK of the item (a timeout keeps it) lets the next GET on; a poll meanwhile finds nothing; other sockets are not held back", async () => {
    const target = makeTarget();
    const consumer = await target.client();
    const producer = await target.server();
    const first = await waitingGet(consumer);
    await put(producer, "a");
    await put(producer, "b");
    expect((await consumer.request(Op.CANCEL, first))[2]).toBe(false);
    const a = (await got(consumer, first))!;
    expect(await take(consumer)).toBeNull(); // "b" would pass "a", were "a" to come back
    const second = await waitingGet(consumer);
    const other = await target.client("bruce");
    expect((await take(other))?.value).toBe("b"); // another socket may take it
    await put(producer, "c");
    expect(await stillWaiting(consumer, second)).toBe(true);
    await ack(consumer, [a.seq]);
    expect((await got(consumer, second))?.value).toBe("c");
  });

  test("a RELEASE serves a waiting GET at once", async () => {
    const target = makeTarget();
    const holder = await target.client();
    const waiter = await target.server();
    const item = await putAndTake(waiter, holder, "passed on");
    const get = await waitingGet(waiter);
    expect((await holder.request(Op.RELEASE, [item.seq]))[2]).toBe(1);
    expect(await got(waiter, get)).toEqual(item);
  });

  test("a CANCEL only ends GETs of its own socket", async () => {
    const target = makeTarget();
    const owner = await target.client();
    const stranger = await target.client();
    const get = await waitingGet(owner);
    expect((await stranger.request(Op.CANCEL, get))[2]).toBe(false);
    expect(await stillWaiting(owner, get)).toBe(true);
    await put(stranger, "for the owner");
    expect((await got(owner, get))?.value).toBe("for the owner");
  });

  test("a waiter whose socket closed does not swallow an item", async () => {
    const target = makeTarget();
    const gone = await target.client();
    startGet(gone);
    await until(async () => (await storedWaiters(target.stub)) === 1, "the GET waits");
    gone.close();
    await gone.closed;
    await until(async () => (await storedWaiters(target.stub)) === 0, "the closed socket's wait ended");
    const producer = await target.server();
    await put(producer, "kept");
    expect(await size(producer)).toBe(1);
    expect((await take(producer))?.value).toBe("kept");
  });

  test("SIZE counts the items waiting in one queue", async () => {
    const target = makeTarget();
    const wire = await target.client();
    expect(await size(wire)).toBe(0);
    await put(wire, 1);
    await put(wire, 2);
    await put(wire, 3, "queue", "other");
    expect([await size(wire), await size(wire, "queue", "other")]).toEqual([2, 1]);
    const item = (await take(wire))!;
    expect(await size(wire)).toBe(1);
    await ack(wire, [item.seq]);
    expect(await size(wire)).toBe(1);
  });

  test("a connection may have MAX_WAITS receives waiting at once; one more is refused, and room comes back", async () => {
    const target = makeTarget();
    const consumer = await target.client();
    const gets = Array.from({ length: Limits.MAX_WAITS }, (_, i) => startGet(consumer, "queue", `q${i % 7}`));
    expect(await stillWaiting(consumer, gets.at(-1)!)).toBe(true);
    const refused = startGet(consumer);
    const reply = await consumer.reply(refused);
    expect(reply.slice(0, 3)).toEqual([Msg.ERROR, refused, ErrorCode.TOO_MANY_WAITS]);
    expect(await storedWaiters(target.stub)).toBe(Limits.MAX_WAITS);
    // another connection is not affected
    const other = await target.server();
    expect(await stillWaiting(other, startGet(other))).toBe(true);
    // a cancelled wait makes room
    expect((await consumer.request(Op.CANCEL, gets[0]))[2]).toBe(true);
    expect(await stillWaiting(consumer, startGet(consumer))).toBe(true);
  });
});
