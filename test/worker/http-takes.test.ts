// HTTP takes that wait join the FIFO's line of waiting receivers, inside the
// object: their bound, and their order among themselves and after a socket's.
import { runInDurableObject } from "cloudflare:test";
import { expect, test } from "vitest";
import { decodeValue, encodeValue } from "../../client/codec.js";
import { ErrorCode, Limits, Msg, Op } from "../../client/protocol.js";
import type { SharedObject } from "../../worker/shared-object.js";
import { spaceTarget } from "./objects.js";
import { got, take, waitingGet } from "./channels.js";

const respond = (value: Uint8Array) => new Response(value.slice());

test("at most MAX_WAITS HTTP takes wait at once on an object; waiting ones are served in the order they came, after a socket's receive that came first", async () => {
  const target = spaceTarget();
  const receiver = await target.client("alice");
  const get = await waitingGet(receiver, "queue", "q");
  await runInDurableObject(target.stub, async (instance: SharedObject) => {
    const takes = Array.from({ length: Limits.MAX_WAITS }, () => instance.takeForHttp("queue:q", 30_000, 0, respond));
    await expect(instance.takeForHttp("queue:q", 30_000, 0, respond)).rejects.toMatchObject({ code: ErrorCode.TOO_MANY_WAITS, status: 429 });
    expect(instance.fifo.waiting).toBe(1); // the socket's: HTTP takes have their own bound
    expect(instance.summary().channels).toEqual([{ fifo: "queue:q", waiting: 0, delivered: 0, receivers: Limits.MAX_WAITS + 1 }]);

    for (let i = 0; i <= Limits.MAX_WAITS; i++) instance.putItem("queue:q", encodeValue(i));
    const values = await Promise.all(takes.map(async (take) => decodeValue(new Uint8Array(await (await take)!.arrayBuffer()))));
    expect(values).toEqual(Array.from({ length: Limits.MAX_WAITS }, (_, i) => i + 1));
    // ?lease=0: each left storage as it was answered; the socket's is leased to it
    expect(instance.summary().channels).toEqual([{ fifo: "queue:q", waiting: 0, delivered: 1, receivers: 0 }]);
  });
  expect((await got(receiver, get))!.value).toBe(0);
});

test("a waiting take that cannot show the item served to it answers its error, and the item goes to the next waiter in its place", async () => {
  const target = spaceTarget();
  const holder = await target.client("holder");
  const receiver = await target.client("alice");
  // Shown as its caller asked, except "a" (as a JSON take and a value JSON cannot show).
  const picky = (value: Uint8Array) => {
    if (decodeValue(value) === "a") throw new Error("cannot show it");
    return respond(value);
  };
  // (In a box: the call into the object returns once the take waits, not once it is answered.)
  const wait = (instance: SharedObject) => {
    const answered = instance.takeForHttp("queue:q", 30_000, 0, picky);
    return [answered.then(() => "answered", (error: Error) => error.message)] as const;
  };
  await runInDurableObject(target.stub, (instance: SharedObject) => {
    instance.putItem("queue:q", encodeValue("a"));
    instance.putItem("queue:q", encodeValue("b"));
  });
  const a = (await take(holder, "queue", "q"))!;
  const b = (await take(holder, "queue", "q"))!;
  // Both come back at once: the take first in line gets "a", the get behind it "b"...
  const [first] = await runInDurableObject(target.stub, wait);
  const get = await waitingGet(receiver, "queue", "q");
  expect(await holder.request(Op.RELEASE, [a.seq, b.seq])).toEqual([Msg.REPLY, expect.any(Number), 1]);
  expect(await first).toBe("cannot show it");
  // ...unless the take cannot show "a": then "a" is the get's, not "b".
  expect((await got(receiver, get))!.value).toBe("a");

  // The same for an item put while they wait ("b" out of the way meanwhile).
  expect((await take(holder, "queue", "q"))!.value).toBe("b");
  const [second] = await runInDurableObject(target.stub, wait);
  const get2 = await waitingGet(receiver, "queue", "q");
  await runInDurableObject(target.stub, (instance: SharedObject) => instance.putItem("queue:q", encodeValue("a")));
  expect(await second).toBe("cannot show it");
  expect((await got(receiver, get2))!.value).toBe("a");
});
