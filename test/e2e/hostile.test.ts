// What a hostile caller tried in review, kept as tests: values that JSON
// cannot show, batches that go on after a refused HELLO, path tricks with
// "." and "..", headers and query parameters meant for the objects, keys
// named __proto__, bodies that are not what they claim.
import { request as httpRequest } from "node:http";
import { describe, expect, test } from "vitest";
import { Client, ErrorCode } from "sharevars";
import { Msg, Op, PROTOCOL_VERSION, encodeFrame } from "../../client/protocol.js";
import { encodeValue } from "../../client/codec.js";
import { handles } from "../helpers/handles.js";
import { rawSocket } from "../helpers/raw.js";
import { SERVER_TOKEN, uniqueSpace, workerUrl } from "../helpers/e2e.js";

const open = handles();
const AUTH = { authorization: `Bearer ${SERVER_TOKEN}` };
const api = (space: string, path: string, init: RequestInit = {}) =>
  fetch(`${workerUrl()}/v1/spaces/${space}${path}`, { ...init, headers: { ...AUTH, ...(init.headers as Record<string, string>) } });

/** 202 bytes of CBOR that expand to 2^25 strings as JSON: x = [x, x], 25 times. */
function expanding(): unknown {
  let x: unknown = ["x"];
  for (let i = 0; i < 25; i++) x = [x, x];
  return x;
}

describe("hostile input", () => {
  test("values JSON cannot show: 406 at once, the object keeps serving, queue items stay in line", async () => {
    const space = uniqueSpace("bomb");
    const client = await open.client(space, "mallory");
    const cycle: Record<string, unknown> = { name: "loop" };
    cycle.self = cycle;
    client.globals["bomb"] = expanding();
    client.globals["cycle"] = cycle;
    client.globals["fine"] = 1;
    await client.sync();

    const started = Date.now();
    for (const key of ["bomb", "cycle"]) {
      const response = await api(space, `/globals/${key}`);
      expect(response.status).toBe(406);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("BAD_VALUE");
    }
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await api(space, "/globals")).status).toBe(406);
    expect(await (await api(space, "/globals/fine")).json()).toBe(1);
    // CBOR shows them exactly
    const exact = await api(space, "/globals/cycle", { headers: { accept: "application/cbor" } });
    expect(exact.status).toBe(200);

    // the inspector shows the keys, with a note instead of the value
    const summary = (await (await api(space, "/summary")).json()) as { globals: { dict: [string, string][] } };
    expect(Object.fromEntries(summary.globals.dict)).toMatchObject({ fine: "1", bomb: expect.stringContaining("not shown as JSON") });

    // queue items JSON cannot show are not taken by a JSON get, leased or not
    await client.globals.queues["q"].put(cycle);
    for (const lease of ["0", "30"]) {
      expect((await api(space, `/queues/q/get?lease=${lease}`, { method: "POST" })).status).toBe(406);
      expect(await client.globals.queues["q"].size()).toBe(1);
    }
    expect(await client.globals.queues["q"].get({ timeout: 5000 })).toEqual(cycle);
  });

  test("Map keys JSON must write as text: within the budget, never a 500", async () => {
    const space = uniqueSpace("map-keys");
    const client = await open.client(space, "mallory");
    // 180 bytes of CBOR whose key String() would expand to 8 MiB (at 40 levels: minutes of CPU and gigabytes)
    let key: unknown = "x";
    for (let i = 0; i < 22; i++) key = [key, key];
    client.globals["bomb"] = new Map([[key, 1]]);
    // a key String() cannot convert at all
    client.globals["odd"] = new Map([[{ toString: 0 }, 1]]);
    client.globals["fine"] = new Map<unknown, unknown>([[1, "a"], [[1, 2], "b"]]);
    await client.sync();

    const bomb = await api(space, "/globals/bomb");
    expect(bomb.status).toBe(406);
    expect(((await bomb.json()) as { error: { code: string } }).error.code).toBe("BAD_VALUE");
    const odd = await api(space, "/globals/odd");
    expect(odd.status).toBe(200);
    expect(await odd.json()).toEqual({ '{"toString":0}': 1 });
    expect(await (await api(space, "/globals/fine")).json()).toEqual({ 1: "a", "[1,2]": "b" });
    expect((await api(space, "/globals")).status).toBe(406); // the page holds the bomb
    const summary = (await (await api(space, "/summary")).json()) as { globals: { dict: [string, string][] } };
    expect(Object.fromEntries(summary.globals.dict)).toMatchObject({ bomb: expect.stringContaining("not shown as JSON"), odd: '{"{\\"toString\\":0}":1}' });
    // queue items too: a JSON get answers 406 and the item stays in line
    await client.globals.queues["q"].put(new Map([[key, 1]]));
    expect((await api(space, "/queues/q/get", { method: "POST" })).status).toBe(406);
    expect(await client.globals.queues["q"].size()).toBe(1);
  });

  test("a BATCH stops at a refused HELLO: nothing after it is served", async () => {
    const space = uniqueSpace("batch-guess");
    const socket = await rawSocket(workerUrl(), `/v1/spaces/${space}/ws?role=server`);
    const hello = (id: number, token: string) => encodeFrame([Op.HELLO, id, { v: PROTOCOL_VERSION, session: `s${id}`, token }]);
    const set = (id: number, key: string) => encodeFrame([Op.DICT_SET, id, key, encodeValue(true)]);
    socket.send([Op.BATCH, 0, [hello(1, "guess-1"), set(2, "after-guess-1"), hello(3, SERVER_TOKEN), set(4, "after-right-token")]] as unknown[]);
    expect((await socket.closed).code).toBe(4001);
    expect(socket.frames.some((f) => f[0] === Msg.ERROR && f[1] === 1 && f[2] === ErrorCode.UNAUTHORIZED)).toBe(true);
    expect(await (await api(space, "/globals")).json()).toEqual({});
  });

  test('"." and ".." are not names: they would resolve to another route', async () => {
    const space = uniqueSpace("dots");
    const server = await open.server(space);
    for (const id of [".", ".."]) {
      expect(() => server.clients.get(id)).toThrow(TypeError);
      await expect(Client.connect(workerUrl(), { space, id })).rejects.toThrow(TypeError);
    }
    await expect(Client.connect(workerUrl(), { space: "..", id: "a" })).rejects.toThrow(TypeError);
    expect(() => server.queues[".."]).toThrow(TypeError);
  });

  test("headers and query parameters meant for the objects do not reach them; no stack reaches a caller", async () => {
    const space = uniqueSpace("headers");
    const client = await open.client(space, "c");
    // partyserver's own props header, on a WebSocket route and on an HTTP route
    const socket = new WebSocket(`${workerUrl().replace("http", "ws")}/v1/spaces/${space}/ws?role=client&id=a&_pk=server`, { headers: { "x-partykit-props": "{bad" } } as never);
    socket.binaryType = "arraybuffer";
    const first = await new Promise<unknown>((resolve, reject) => {
      socket.onopen = () => socket.send(encodeFrame([Op.HELLO, 1, { v: PROTOCOL_VERSION, session: "s" }]));
      socket.onmessage = (event) => resolve(event.data);
      socket.onerror = reject;
    });
    expect(typeof first).not.toBe("string"); // a protocol frame, not a JSON error with a stack
    socket.close();
    const http = await api(space, "/globals?_pk=server", { headers: { "x-partykit-props": "{bad" } });
    expect(http.status).toBe(200);
    expect(await http.text()).not.toContain(" at ");
    // a WebSocket upgrade on an HTTP route is refused (node:http, since fetch will not send an upgrade)
    const status = await new Promise<number>((resolve, reject) => {
      const request = httpRequest(`${workerUrl()}/v1/spaces/${space}/queues/q`, {
        headers: { ...AUTH, connection: "Upgrade", upgrade: "websocket", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" },
      });
      request.on("response", (response) => (response.resume(), resolve(response.statusCode!)));
      request.on("upgrade", (_response, upgraded) => (upgraded.destroy(), resolve(101)));
      request.on("error", reject);
      request.end();
    });
    expect(status).toBe(400);
    await client.sync();
  });

  test("a key named __proto__ is an ordinary key over HTTP and in the inspector", async () => {
    const space = uniqueSpace("proto");
    const client = await open.client(space, "c");
    client.globals.dict.set("__proto__", 1);
    client.globals["zzz"] = 2;
    await client.sync();
    const all = await api(space, "/globals");
    expect(all.status).toBe(200);
    expect(await all.text()).toBe('{"__proto__":1,"zzz":2}');
    const summary = (await (await api(space, "/summary")).json()) as { globals: { dict: [string, string][] } };
    expect(summary.globals.dict).toEqual([["__proto__", "1"], ["zzz", "2"]]);
  });

  test("bodies: not UTF-8, not shareable, sent in chunks past the limit — typed 4xx, nothing stored", async () => {
    const space = uniqueSpace("bodies");
    const error = async (response: Response) => [response.status, ((await response.json()) as { error: { code: string } }).error.code];
    expect(await error(await api(space, "/globals/a", { method: "PUT", body: new Uint8Array([0x22, 0xff, 0x22]) }))).toEqual([400, "BAD_VALUE"]);
    expect(await error(await api(space, "/globals/a", { method: "PUT", body: '"\\ud800"' }))).toEqual([400, "BAD_VALUE"]);
    expect(await error(await api(space, "/globals/a", { method: "PUT", body: '{"__proto__": {"x": 1}}' }))).toEqual([400, "BAD_VALUE"]);
    expect(await error(await api(space, "/globals/a", { method: "PUT", body: "[".repeat(100) + "]".repeat(100) }))).toEqual([400, "BAD_VALUE"]);
    // no Content-Length: a streamed body is cut off at the frame limit
    const chunk = new Uint8Array(256 * 1024).fill(0x20);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 8) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const streamed = await api(space, "/globals/a", { method: "PUT", body: stream, duplex: "half" } as RequestInit);
    expect(await error(streamed)).toEqual([413, "FRAME_TOO_LARGE"]);
    expect(await (await api(space, "/globals")).json()).toEqual({});
  });

  test("GET /clients comes in pages with the total", async () => {
    const space = uniqueSpace("clients-page");
    for (const id of ["a", "b", "c"]) await open.client(space, id);
    const page = (await (await api(space, "/clients?offset=1&limit=1")).json()) as { clients: { id: string }[]; total: number };
    expect(page.total).toBe(3);
    expect(page.clients.map((c) => c.id)).toEqual(["b"]);
  });
});
