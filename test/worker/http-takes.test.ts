// HTTP takes that wait join the FIFO's line of waiting receivers, inside the
// object: their bound, and their order among themselves and after a socket's.
import { runInDurableObject } from "cloudflare:test";
import { expect, test } from "vitest";
import { decodeValue, encodeValue } from "../../client/codec.js";
import { ErrorCode, Limits } from "../../client/protocol.js";
import type { SharedObject } from "../../worker/shared-object.js";
import { spaceTarget } from "./objects.js";
import { got, waitingGet } from "./channels.js";

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
