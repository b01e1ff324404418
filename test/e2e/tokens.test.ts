// Token mode (CLIENT_AUTH=token): a client connects with a token the server
// issued for its id and space; nothing else gets in, and no client reaches
// another client's dict, pipes or queues by any route.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Client, ClosedError, ErrorCode, Server } from "sharevars";
import { Msg, Op } from "../../client/protocol.js";
import { startWorker, SERVER_TOKEN, type LocalWorker } from "../helpers/worker.js";
import { rawSocket } from "../helpers/raw.js";
import { faultyLink } from "../helpers/proxy.js";
import { uniqueSpace, until } from "../helpers/e2e.js";

let worker: LocalWorker;
beforeAll(async () => {
  worker = await startWorker({ vars: { CLIENT_AUTH: "token" } });
});
afterAll(async () => {
  await worker?.stop();
});

const handles: { close(o?: { flushTimeout?: number }): Promise<void> }[] = [];
afterAll(async () => {
  await Promise.all(handles.map((h) => h.close({ flushTimeout: 0 })));
});

async function server(space: string) {
  const s = await Server.connect(worker.url, { space, token: SERVER_TOKEN });
  handles.push(s);
  return s;
}

/** A JWT whose payload was edited after signing (so its signature no longer matches). */
function tamper(token: string, change: Record<string, unknown>): string {
  const [header, payload, signature] = token.split(".");
  const claims = { ...JSON.parse(Buffer.from(payload, "base64url").toString()), ...change };
  return [header, Buffer.from(JSON.stringify(claims)).toString("base64url"), signature].join(".");
}

describe("client tokens", () => {
  test("the right token works: the client shares its dict and pipe with the server", async () => {
    const space = uniqueSpace("tokens");
    const s = await server(space);
    const token = await s.issueClientToken("alice");
    const alice = await Client.connect(worker.url, { space, token });
    handles.push(alice);
    expect(alice.id).toBe("alice");
    alice["greeting"] = "hi";
    await alice.send("ping");
    const peer = s.clients.get("alice");
    await peer.ready;
    expect(peer["greeting"]).toBe("hi");
    expect(await peer.recv()).toBe("ping");
  });

  test("no token, a forged token, an expired token, a token for another space are refused", async () => {
    const space = uniqueSpace("tokens");
    const s = await server(space);
    const refused = (options: { id?: string; token?: string; space?: string }) =>
      Client.connect(worker.url, { space, connectTimeout: 10_000, ...options });

    await expect(refused({ id: "alice" })).rejects.toMatchObject({ name: "AuthError", code: ErrorCode.UNAUTHORIZED });

    const token = await s.issueClientToken("alice");
    await expect(refused({ token: tamper(token, { sub: "mallory" }) })).rejects.toMatchObject({ code: ErrorCode.UNAUTHORIZED });
    await expect(refused({ token: tamper(token, { exp: 4102444800 }) })).rejects.toMatchObject({ code: ErrorCode.UNAUTHORIZED });

    const other = await server(uniqueSpace("tokens-other"));
    const otherSpaceToken = await other.issueClientToken("alice");
    await expect(refused({ token: otherSpaceToken })).rejects.toMatchObject({ name: "AuthError", code: ErrorCode.FORBIDDEN });

    const shortLived = await s.issueClientToken("alice", { ttlSeconds: 1 });
    const expiry = JSON.parse(Buffer.from(shortLived.split(".")[1], "base64url").toString()).exp * 1000;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiry - Date.now()) + 1100)); // until it has expired
    await expect(refused({ token: shortLived })).rejects.toThrow(/expired/);

    // the library refuses a token for someone else before connecting
    expect(() => new Client(worker.url, { space, id: "bob", token })).toThrow(TypeError);
  });

  test("a valid client token reaches no other client's object by any route", async () => {
    const space = uniqueSpace("tokens");
    const s = await server(space);
    const aliceToken = await s.issueClientToken("alice");
    const bob = s.clients.get("bob");
    await bob.ready;
    bob["secret"] = "bob's";
    await bob.put("bob's item");
    await bob.sync();

    // alice's token on bob's object, as a client
    const asClient = await rawSocket(worker.url, `/v1/spaces/${space}/clients/bob/ws?role=client`);
    expect((await asClient.hello({ token: aliceToken })).slice(0, 3)).toEqual([Msg.ERROR, 1, ErrorCode.FORBIDDEN]);
    expect((await asClient.closed).code).toBe(4003);
    expect(asClient.frames.some((f) => f[0] === Msg.SNAPSHOT)).toBe(false);

    // alice's token on bob's object, claiming the server role
    const asServer = await rawSocket(worker.url, `/v1/spaces/${space}/clients/bob/ws?role=server`);
    expect((await asServer.hello({ token: aliceToken })).slice(0, 3)).toEqual([Msg.ERROR, 1, ErrorCode.UNAUTHORIZED]);
    expect((await asServer.closed).code).toBe(4001);

    // alice's token claiming bob's id on the space object
    const spaceAsBob = await rawSocket(worker.url, `/v1/spaces/${space}/ws?role=client&id=bob`);
    expect((await spaceAsBob.hello({ token: aliceToken })).slice(0, 3)).toEqual([Msg.ERROR, 1, ErrorCode.FORBIDDEN]);

    // a client cannot issue tokens
    const alice = await rawSocket(worker.url, `/v1/spaces/${space}/ws?role=client&id=alice`);
    expect((await alice.hello({ token: aliceToken })).slice(0, 2)).toEqual([Msg.REPLY, 1]);
    alice.send([Op.ISSUE_TOKEN, 2, "bob", 60]);
    expect((await alice.reply(2)).slice(0, 3)).toEqual([Msg.ERROR, 2, ErrorCode.FORBIDDEN]);
    alice.close();

    // alice's token on every HTTP route (they take the server token only)
    const bearer = { authorization: `Bearer ${aliceToken}` };
    const base = `${worker.url}/v1/spaces/${space}`;
    const attempts: [string, RequestInit][] = [
      ["/clients/bob/dict", {}], ["/clients/bob/dict/secret", {}], ["/clients/bob/dict/secret", { method: "PUT", body: '"mine"' }],
      ["/clients/bob/queues/default/get", { method: "POST" }], ["/clients/bob/pipes/default/recv", { method: "POST" }],
      ["/clients/alice/dict", {}], ["/globals", {}], ["/clients", {}], ["/queues/default/get", { method: "POST" }], ["/summary", {}],
    ];
    for (const [path, init] of attempts) {
      const response = await fetch(base + path, { ...init, headers: bearer });
      expect([path, response.status]).toEqual([path, 401]);
    }

    // bob's state is untouched
    expect(bob["secret"]).toBe("bob's");
    expect(await bob.queues["default"].size()).toBe(1);
  });

  test("a client refused on reconnect (its token expired) is closed whole: no socket left open, nothing more accepted", async () => {
    const space = uniqueSpace("tokens");
    const s = await server(space);
    const link = await faultyLink(worker.url);
    try {
      const token = await s.issueClientToken("alice", { ttlSeconds: 1 });
      const alice = await Client.connect(link.url, { space, token });
      const statuses: string[] = [];
      alice.on("status", (status) => statuses.push(status));
      const expiry = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()).exp * 1000;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiry - Date.now()) + 1100));
      // Only the socket to alice's own object drops (that object restarted, say): its reconnect is refused.
      expect(link.cut("/clients/alice/")).toBe(1);
      await until(() => alice.status === "closed", { what: "alice closed" });
      // Her other connection (to the space) closed with it: no socket left, no write taken.
      await until(() => link.open === 0, { timeout: 3000, what: "every socket of alice closed" });
      expect(() => (alice.globals["k"] = 1)).toThrow(ClosedError);
      await expect(alice.globals.put(1)).rejects.toBeInstanceOf(ClosedError);
      expect(statuses).toEqual(["connecting", "closed"]);
    } finally {
      await link.close();
    }
  });

  test("tokens never reach the worker's log", async () => {
    const space = uniqueSpace("tokens");
    const s = await server(space);
    const token = await s.issueClientToken("carol");
    const carol = await Client.connect(worker.url, { space, token });
    handles.push(carol);
    await Client.connect(worker.url, { space, token: tamper(token, { sub: "x" }) }).catch(() => {});
    const log = worker.output();
    expect(log).not.toContain(token.split(".")[2]);
    expect(log).not.toContain(SERVER_TOKEN);
  });
});
