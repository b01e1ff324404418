// Pipes: two-ended channels of one client object. What one end sends only the
// other end receives, in order; the space object has no pipes at all.
import { expect, test } from "vitest";
import { ErrorCode, Msg, Op } from "../../client/protocol.js";
import { encodeValue } from "../../client/codec.js";
import { clientTarget, spaceTarget } from "./objects.js";
import { got, put, size, startGet, stillWaiting, take } from "./channels.js";

test("each end of a pipe receives only what the other end sent, in order", async () => {
  const target = clientTarget();
  const client = await target.client();
  const server = await target.server();
  await put(client, "up 1", "pipe");
  await put(client, "up 2", "pipe");
  await put(server, "down 1", "pipe");

  expect(await size(client, "pipe")).toBe(1);
  expect(await size(server, "pipe")).toBe(2);
  expect((await take(client, "pipe"))?.value).toBe("down 1");
  expect(await take(client, "pipe")).toBeNull(); // never its own items
  expect((await take(server, "pipe"))?.value).toBe("up 1");
  expect((await take(server, "pipe"))?.value).toBe("up 2");
  expect(await take(server, "pipe")).toBeNull();
});

test("a waiting receive on a pipe is answered by the other end, not by its own side", async () => {
  const target = clientTarget();
  const client = await target.client();
  const secondClientSocket = await target.client();
  const server = await target.server();
  const get = startGet(client, "pipe");
  await put(secondClientSocket, "from the same end", "pipe");
  expect(await stillWaiting(client, get)).toBe(true);
  await put(server, "from the server", "pipe");
  expect((await got(client, get))?.value).toBe("from the server");
});

test("pipes of different names, and the queue of the same name, are separate", async () => {
  const target = clientTarget();
  const client = await target.client();
  const server = await target.server();
  await put(client, "on a", "pipe", "a");
  await put(client, "queued", "queue", "a");
  expect(await take(server, "pipe", "b")).toBeNull();
  expect((await take(server, "pipe", "a"))?.value).toBe("on a");
  expect((await take(server, "queue", "a"))?.value).toBe("queued");
});

test("the space object has no pipes: every pipe operation is a BAD_ARGUMENT", async () => {
  const target = spaceTarget();
  const client = await target.client();
  const server = await target.server();
  for (const wire of [client, server]) {
    for (const args of [[Op.PUT, "pipe", "default", encodeValue(1)], [Op.GET, "pipe", "default", false], [Op.SIZE, "pipe", "default"]] as const) {
      const [op, ...rest] = args;
      const reply = await wire.request(op, ...rest);
      expect(reply).toEqual([Msg.ERROR, expect.any(Number), ErrorCode.BAD_ARGUMENT, expect.stringContaining("no global pipes")]);
    }
  }
  // Nothing was stored under a pipe's name: the queue of the same name is empty.
  expect(await size(server, "queue", "default")).toBe(0);
});
