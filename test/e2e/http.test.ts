// The HTTP API: the same dicts, queues and pipes as the WebSocket API, for
// backends and scripts, with the server token — checked against the real
// client library on the other side.
import { describe, expect, test } from "vitest";
import { decodeValue, encodeValue } from "../../client/codec.js";
import { handles } from "../helpers/handles.js";
import { SERVER_TOKEN, uniqueSpace, until, workerUrl } from "../helpers/e2e.js";

const open = handles();
const AUTH = { authorization: `Bearer ${SERVER_TOKEN}` };

function api(space: string, path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
  const { json, ...rest } = init;
  return fetch(`${workerUrl()}/v1/spaces/${encodeURIComponent(space)}${path}`, {
    ...rest,
    headers: { ...AUTH, ...(rest.headers as Record<string, string>) },
    body: json === undefined ? rest.body : JSON.stringify(json),
  });
}

/** Receivers waiting on a fifo of the space's object, as the inspector summary shows them. */
async function globalReceivers(space: string, fifo: string): Promise<number> {
  const summary = (await (await api(space, "/summary")).json()) as { globals: { channels: { fifo: string; receivers: number }[] } };
  return summary.globals.channels.find((c) => c.fifo === fifo)?.receivers ?? 0;
}

async function errorOf(response: Response): Promise<{ status: number; code: string }> {
  const body = (await response.json()) as { error: { code: string } };
  return { status: response.status, code: body.error.code };
}

describe("HTTP API", () => {
  test("the server token is required: none, a wrong one and a non-Bearer one are refused", async () => {
    const space = uniqueSpace("http-auth");
    const url = `${workerUrl()}/v1/spaces/${space}/globals/k`;
    const attempts: Record<string, string>[] = [{}, { authorization: "Bearer nope" }, { authorization: SERVER_TOKEN }];
    for (const headers of attempts) {
      const response = await fetch(url, { method: "PUT", headers, body: "1" });
      expect(await errorOf(response)).toEqual({ status: 401, code: "UNAUTHORIZED" });
    }
    expect((await api(space, "/globals/k")).status).toBe(404); // nothing was stored
    // the inspector's data too; its page holds none and asks for the token
    expect((await fetch(`${workerUrl()}/v1/spaces/${space}/summary`)).status).toBe(401);
    const page = await fetch(`${workerUrl()}/v1/spaces/${space}/inspect`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
  });

  test("global dict: HTTP writes reach clients, client writes reach HTTP, in JSON", async () => {
    const space = uniqueSpace("http-globals");
    const client = await open.client(space, "alice");

    expect((await api(space, "/globals/test_var", { method: "PUT", json: [0, "well"] })).status).toBe(200);
    await until(() => JSON.stringify(client.globals["test_var"]) === '[0,"well"]', { what: "the HTTP write on the client" });

    client.globals["message"] = "Can somebody bring me some milk?";
    await client.sync();
    expect(await (await api(space, "/globals/message")).json()).toBe("Can somebody bring me some milk?");
    expect(await (await api(space, "/globals")).json()).toEqual({ message: "Can somebody bring me some milk?", test_var: [0, "well"] });

    expect((await api(space, "/globals/test_var", { method: "DELETE" })).status).toBe(200);
    await until(() => !("test_var" in client.globals), { what: "the HTTP delete on the client" });
    expect((await api(space, "/globals/test_var")).status).toBe(404);
  });

  test("GET of a whole dict comes in pages, the next page named by Sharevars-Next", async () => {
    const space = uniqueSpace("http-pages");
    const server = await open.server(space);
    server.dict.update(Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`k${i}`, i])));
    await server.sync();
    const seen: Record<string, unknown> = {};
    let after = "";
    let pages = 0;
    for (;;) {
      const response = await api(space, `/globals?limit=2&after=${after}`);
      Object.assign(seen, await response.json());
      pages++;
      const next = response.headers.get("sharevars-next");
      if (!next) break;
      after = next;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual({ k0: 0, k1: 1, k2: 2, k3: 3, k4: 4 });
  });

  test("a JSON page lists its keys in the page's order (by UTF-8 bytes), integer-like keys too", async () => {
    const space = uniqueSpace("http-order");
    const server = await open.server(space);
    server.dict.update([["b", 1], ["10", 2], ["9", 3], ["a", 4], ["", 5]]);
    await server.sync();
    const text = await (await api(space, "/globals")).text();
    expect([...text.matchAll(/"([^"]*)":/g)].map((m) => m[1])).toEqual(["", "10", "9", "a", "b"]);
    expect(JSON.parse(text)).toEqual({ "": 5, "10": 2, "9": 3, a: 4, b: 1 });
    const page = await api(space, "/globals?limit=2");
    expect(await page.text()).toBe('{"":5,"10":2}');
    expect(page.headers.get("sharevars-next")).toBe("10");
  });

  test("a client's dict and the list of clients", async () => {
    const space = uniqueSpace("http-local");
    const alice = await open.client(space, "alice");
    const bob = await open.client(space, "bob");
    alice["var1"] = 256;
    await alice.sync();

    expect(await (await api(space, "/clients/alice/dict/var1")).json()).toBe(256);
    expect((await api(space, "/clients/alice/dict/var1", { method: "PUT", json: "Hello world!" })).status).toBe(200);
    await until(() => alice["var1"] === "Hello world!", { what: "the HTTP write on alice" });
    expect(bob["var1"]).toBeUndefined();
    expect(await (await api(space, "/clients/bob/dict")).json()).toEqual({});

    const { clients } = (await (await api(space, "/clients")).json()) as { clients: { id: string; online: boolean; order: number }[] };
    expect(clients.map(({ id, online, order }) => ({ id, online, order }))).toEqual([
      { id: "alice", online: true, order: 1 },
      { id: "bob", online: true, order: 2 },
    ]);
  });

  test("global queue: put over HTTP, get over a WebSocket; put over a WebSocket, get and ack over HTTP", async () => {
    const space = uniqueSpace("http-queue");
    const client = await open.client(space, "worker");

    expect((await api(space, "/queues/news", { method: "POST", json: { title: "Super man died" } })).status).toBe(200);
    expect(await client.globals.queues["news"].get({ timeout: 10_000 })).toEqual({ title: "Super man died" });

    await client.globals.queues["news"].put([0, 1, 2]);
    expect(await (await api(space, "/queues/news")).json()).toEqual({ size: 1 });
    const taken = await api(space, "/queues/news/get", { method: "POST" });
    expect(taken.status).toBe(200);
    expect(await taken.json()).toEqual([0, 1, 2]);
    const receipt = taken.headers.get("sharevars-receipt")!;
    expect(receipt).toBeTruthy();
    // leased: not waiting for anyone else, and not gone until acknowledged
    expect(await (await api(space, "/queues/news")).json()).toEqual({ size: 0 });
    expect((await api(space, `/queues/news/ack/${receipt}`, { method: "POST" })).status).toBe(200);
    expect((await api(space, `/queues/news/ack/${receipt}`, { method: "POST" })).status).toBe(404);
    expect(await client.globals.queues["news"].size()).toBe(0);

    // nothing waiting: 204 after the wait
    const started = Date.now();
    expect((await api(space, "/queues/news/get?wait=300", { method: "POST" })).status).toBe(204);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  test("an HTTP get waiting is served by a put; ?lease=0 takes the item at once", async () => {
    const space = uniqueSpace("http-wait");
    const client = await open.client(space, "producer");
    const waiting = api(space, "/queues/jobs/get?wait=10000&lease=0", { method: "POST" });
    await new Promise((r) => setTimeout(r, 200));
    await client.globals.queues["jobs"].put("job 1");
    const response = await waiting;
    expect(await response.json()).toBe("job 1");
    expect(response.headers.get("sharevars-receipt")).toBeNull();
    expect(await client.globals.queues["jobs"].size()).toBe(0);
    expect(await client.globals.queues["jobs"].get({ timeout: 0 }).catch((e: Error) => e.name)).toBe("TimeoutError");
  });

  test("a caller that goes away loses nothing: its unacknowledged item returns to the head after the lease", async () => {
    const space = uniqueSpace("http-gone");
    const producer = await open.client(space, "producer");
    const consumer = await open.client(space, "consumer");

    // A caller starts a long wait and goes away; the item then put is leased to nobody listening.
    const gone = new AbortController();
    const abandoned = api(space, "/queues/q/get?wait=10000&lease=1", { method: "POST", signal: gone.signal }).catch(() => "aborted");
    await new Promise((r) => setTimeout(r, 200));
    gone.abort();
    expect(await abandoned).toBe("aborted");
    await producer.globals.queues["q"].put("precious");
    await producer.globals.queues["q"].put("second");

    // While leased, the item is invisible (later items go ahead); when the lease ends it is
    // back at the head, and a WebSocket getter already waiting gets it.
    expect(await consumer.globals.queues["q"].get({ timeout: 5_000 })).toBe("second");
    expect(await consumer.globals.queues["q"].get({ timeout: 15_000 })).toBe("precious");
    expect(await consumer.globals.queues["q"].size()).toBe(0);
  });

  test("HTTP takes and WebSocket receives that wait on one queue are served in the order they began to wait", async () => {
    const space = uniqueSpace("http-fair");
    const producer = await open.client(space, "producer");
    const consumer = await open.client(space, "consumer");
    const jobs = producer.globals.queues["jobs"];
    const receivers = () => globalReceivers(space, "queue:jobs");

    // An HTTP take waits first, a WebSocket get() after it: the first item is the take's.
    const take = api(space, "/queues/jobs/get?wait=10000&lease=0", { method: "POST" });
    await until(async () => (await receivers()) === 1, { what: "the HTTP take waiting" });
    const get = consumer.globals.queues["jobs"].get({ timeout: 10_000 });
    await until(async () => (await receivers()) === 2, { what: "the get waiting behind it" });
    await jobs.put("first");
    await jobs.put("second");
    expect(await (await take).json()).toBe("first");
    expect(await get).toBe("second");

    // And the other way round: the get waits first, so the take gets the second item.
    const get2 = consumer.globals.queues["jobs"].get({ timeout: 10_000 });
    await until(async () => (await receivers()) === 1, { what: "the get waiting" });
    const take2 = api(space, "/queues/jobs/get?wait=10000&lease=0", { method: "POST" });
    await until(async () => (await receivers()) === 2, { what: "the HTTP take waiting behind it" });
    await jobs.put("third");
    await jobs.put("fourth");
    expect(await get2).toBe("third");
    expect(await (await take2).json()).toBe("fourth");
    expect(await jobs.size()).toBe(0);
  });

  test("an HTTP take waiting behind a leased item gets it when the lease ends, and a timed-out take leaves no wait behind", async () => {
    const space = uniqueSpace("http-lease-end");
    const client = await open.client(space, "c");
    await client.globals.put("only");
    // (Timed from before the first take: its lease of 1 s starts after this, however slow its answer.)
    const started = Date.now();
    const first = await api(space, "/queues/default/get?lease=1", { method: "POST" });
    expect(await first.json()).toBe("only");
    const second = await api(space, "/queues/default/get?wait=10000&lease=0", { method: "POST" });
    expect(await second.json()).toBe("only");
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    // the first caller's receipt no longer holds it: the second took it for good
    expect((await api(space, `/queues/default/ack/${first.headers.get("sharevars-receipt")}`, { method: "POST" })).status).toBe(404);

    expect((await api(space, "/queues/default/get?wait=200", { method: "POST" })).status).toBe(204);
    expect(await globalReceivers(space, "queue:default")).toBe(0);
    await client.globals.put("later");
    expect(await client.globals.get({ timeout: 5000 })).toBe("later");
  });

  test("release gives an item back at once, at its place in line", async () => {
    const space = uniqueSpace("http-release");
    const client = await open.client(space, "c");
    await client.globals.put("a");
    await client.globals.put("b");
    const taken = await api(space, "/queues/default/get", { method: "POST" });
    expect(await taken.json()).toBe("a");
    expect((await api(space, `/queues/default/release/${taken.headers.get("sharevars-receipt")}`, { method: "POST" })).status).toBe(200);
    expect(await client.globals.get({ timeout: 5000 })).toBe("a");
    expect(await client.globals.get({ timeout: 5000 })).toBe("b");
  });

  test("a client's pipes and queues: send to it, receive what it sent", async () => {
    const space = uniqueSpace("http-pipes");
    const client = await open.client(space, "bruce");

    expect((await api(space, "/clients/bruce/pipes/default", { method: "POST", json: "What's your name?" })).status).toBe(200);
    expect(await client.recv({ timeout: 10_000 })).toBe("What's your name?");
    await client.send("My name is Bruce.");
    const reply = await api(space, "/clients/bruce/pipes/default/recv?wait=5000&lease=0", { method: "POST" });
    expect(await reply.json()).toBe("My name is Bruce.");

    await client.queues["other_queue"].put("Call me in 5 minutes.");
    expect(await (await api(space, "/clients/bruce/queues/other_queue")).json()).toEqual({ size: 1 });
    const item = await api(space, "/clients/bruce/queues/other_queue/get", { method: "POST" });
    expect(await item.json()).toBe("Call me in 5 minutes.");
    expect((await api(space, `/clients/bruce/queues/other_queue/ack/${item.headers.get("sharevars-receipt")}`, { method: "POST" })).status).toBe(200);

    // the routes of pipes and queues differ: a pipe has recv, a queue get; the space has no pipes
    expect((await api(space, "/clients/bruce/pipes/default/get", { method: "POST" })).status).toBe(404);
    expect((await api(space, "/pipes/default", { method: "POST", json: 1 })).status).toBe(404);
  });

  test("CBOR in and out keeps every type exact", async () => {
    const space = uniqueSpace("http-cbor");
    const client = await open.client(space, "c");
    const value = { big: 2n ** 70n, when: new Date(5), map: new Map<unknown, unknown>([[1, "one"]]), set: new Set([1]), bytes: new Uint8Array([1, 2]), nan: NaN };
    const put = await api(space, "/globals/exact", { method: "PUT", body: encodeValue(value).slice(), headers: { "content-type": "application/cbor" } });
    expect(put.status).toBe(200);
    await until(() => client.globals["exact"] !== undefined, { what: "the CBOR write" });
    expect(client.globals["exact"]).toEqual(value);
    const read = await api(space, "/globals/exact", { headers: { accept: "application/cbor" } });
    expect(read.headers.get("content-type")).toBe("application/cbor");
    expect(decodeValue(new Uint8Array(await read.arrayBuffer()))).toEqual(value);
  });

  test("the summary is one route: GET, no path after it", async () => {
    const space = uniqueSpace("http-summary");
    expect((await api(space, "/summary")).status).toBe(200);
    for (const [path, method] of [["/summary/x", "GET"], ["/summary/clients/a/dict", "GET"], ["/summary", "POST"], ["/summary", "DELETE"]]) {
      const response = await api(space, path, { method });
      expect([path, method, await errorOf(response)]).toEqual([path, method, { status: 404, code: "UNKNOWN_OP" }]);
    }
  });

  test("bad input: typed errors, nothing stored", async () => {
    const space = uniqueSpace("http-bad");
    const big = "x".repeat(1024 * 1024 + 10);
    expect(await errorOf(await api(space, "/globals/k", { method: "PUT", json: big }))).toEqual({ status: 413, code: "VALUE_TOO_LARGE" });
    expect(await errorOf(await api(space, "/globals/k", { method: "PUT", json: "y".repeat(2 * 1024 * 1024) }))).toEqual({ status: 413, code: "FRAME_TOO_LARGE" });
    expect(await errorOf(await api(space, `/globals/${"k".repeat(1025)}`, { method: "PUT", json: 1 }))).toEqual({ status: 413, code: "KEY_TOO_LARGE" });
    expect(await errorOf(await api(space, "/globals/k", { method: "PUT", body: "{not json" }))).toEqual({ status: 400, code: "BAD_VALUE" });
    expect(await errorOf(await api(space, "/globals/k", { method: "PUT", body: new Uint8Array([0xff, 0x00]), headers: { "content-type": "application/cbor" } }))).toEqual({ status: 400, code: "BAD_VALUE" });
    expect(await errorOf(await api(space, "/queues/q", { method: "POST", json: big }))).toEqual({ status: 413, code: "VALUE_TOO_LARGE" });
    expect(await errorOf(await api(space, "/queues/q/get?wait=-1", { method: "POST" }))).toEqual({ status: 400, code: "BAD_ARGUMENT" });
    expect(await errorOf(await api(space, "/queues/q/ack/not-a-receipt", { method: "POST" }))).toEqual({ status: 404, code: "BAD_ARGUMENT" });
    expect(await errorOf(await api(space, "/globals/k", { method: "POST", json: 1 }))).toEqual({ status: 404, code: "UNKNOWN_OP" });
    expect(await (await api(space, "/globals")).json()).toEqual({});
    expect(await (await api(space, "/queues/q")).json()).toEqual({ size: 0 });
  });
});
