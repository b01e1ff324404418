// Token mode (CLIENT_AUTH=token): a client connects with a token the server
// issued for its id and space; nothing else gets in, and no client reaches
// another client's dict, pipes or queues by any route.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Client, ClosedError, ErrorCode, Server } from "sharevars";
import { CloseCode, Msg, Op } from "../../client/protocol.js";
import { startWorker, SERVER_TOKEN, type LocalWorker } from "../helpers/worker.js";
import { rawSocket, type RawSocket } from "../helpers/raw.js";
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

/**
 * Waits for `client`'s one reconnect (its sockets ended at its token's
 * expiry) and shows it works after: a write reaches the server.
 */
async function backAfterOneReconnect(client: Client, s: Server): Promise<void> {
  const statuses: string[] = [];
  client.on("status", (status) => statuses.push(status));
  await until(() => statuses.includes("open"), { timeout: 10_000, what: `${client.id} reconnected` });
  expect(statuses).toEqual(["connecting", "open"]);
  client["back"] = true;
  await client.sync();
  const peer = s.clients.get(client.id);
  await peer.ready;
  expect(peer["back"]).toBe(true);
}

/** When a token expires (ms since the epoch). */
function expiryOf(token: string): number {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()).exp * 1000;
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
    await expect(Client.connect(worker.url, { space, id: "bob", token })).rejects.toThrow(TypeError);
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

  test("a fixed token ends the client when it expires: the objects end its sockets (TOKEN_EXPIRED), and its reconnect is refused", async () => {
    const space = uniqueSpace("tokens");
    const s = await server(space);
    const link = await faultyLink(worker.url);
    try {
      const token = await s.issueClientToken("alice", { ttlSeconds: 2 });
      const alice = await Client.connect(link.url, { space, token });
      const statuses: string[] = [];
      alice.on("status", (status) => statuses.push(status));
      alice["before"] = 1;
      await alice.sync();
      await until(() => alice.status === "closed", { timeout: expiryOf(token) - Date.now() + 5000, what: "alice closed" });
      expect(Date.now()).toBeGreaterThanOrEqual(expiryOf(token));
      // Both connections closed: no socket left, no write taken.
      await until(() => link.open === 0, { timeout: 3000, what: "every socket of alice closed" });
      expect(() => (alice.globals["k"] = 1)).toThrow(ClosedError);
      await expect(alice.globals.put(1)).rejects.toBeInstanceOf(ClosedError);
      expect(statuses).toEqual(["connecting", "closed"]);
    } finally {
      await link.close();
    }
  });

  test("a token function keeps a client past its tokens: renewed on the open sockets, with no reconnect, and the server never sees it leave", async () => {
    const space = uniqueSpace("tokens");
    const s = await server(space);
    const left: string[] = [];
    s.on("disconnect", (id) => left.push(id));
    let calls = 0;
    const alice = await Client.connect(worker.url, { space, token: () => (calls++, s.issueClientToken("alice", { ttlSeconds: 2 })) });
    handles.push(alice);
    const statuses: string[] = [];
    alice.on("status", (status) => statuses.push(status));
    await new Promise((resolve) => setTimeout(resolve, 5000)); // past two tokens' lives
    alice["after"] = "renewals";
    await alice.send("still here");
    const peer = s.clients.get("alice");
    await peer.ready;
    expect(await peer.recv({ timeout: 5000 })).toBe("still here");
    expect(peer["after"]).toBe("renewals");
    expect(statuses).toEqual([]); // never reconnected
    expect(left).toEqual([]);
    // One call per renewal, shared by the two connections: the first, then one per token life at most.
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(calls).toBeLessThanOrEqual(6);
  });

  // A renewal on the open sockets that fails, or never answers (given up after
  // connectTimeout): the sockets end at the expiry, and the reconnect asks again.
  test.each([
    ["fails when asked to renew", () => Promise.reject(new Error("the backend is down"))],
    ["never answers when asked to renew", () => new Promise<string>(() => {})],
  ] as const)("a token function that %s: the sockets end at the expiry, and the reconnect gets a new token", async (_, renewal) => {
    const space = uniqueSpace("tokens");
    const s = await server(space);
    let calls = 0;
    const alice = await Client.connect(worker.url, {
      space,
      connectTimeout: 1000,
      token: () => {
        calls++;
        if (calls === 2) return renewal(); // the renewal on the open sockets
        return s.issueClientToken("alice", { ttlSeconds: calls === 1 ? 2 : 3600 });
      },
    });
    handles.push(alice);
    await backAfterOneReconnect(alice, s);
    expect(calls).toBe(3);
  });

  test("a client offline past its token's expiry (a sleeping laptop) comes back: its old token refused, the function gives a new one", async () => {
    const space = uniqueSpace("tokens");
    const s = await server(space);
    const link = await faultyLink(worker.url);
    try {
      const tokens: string[] = [];
      const alice = await Client.connect(link.url, {
        space,
        token: async () => (tokens.push(await s.issueClientToken("alice", { ttlSeconds: tokens.length === 0 ? 2 : 3600 })), tokens.at(-1)!),
      });
      link.down(); // before the object asks for a new token
      alice["written offline"] = 1;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiryOf(tokens[0]) - Date.now()) + 500));
      expect(tokens).toHaveLength(1);
      link.up();
      await alice.sync(); // the write made offline reaches the object
      await until(() => alice.status === "open", { what: "both connections back" });
      expect(tokens).toHaveLength(2);
      const peer = s.clients.get("alice");
      await peer.ready;
      expect(peer["written offline"]).toBe(1);
      await alice.close();
    } finally {
      await link.close();
    }
  });

  test("the protocol: RENEW before the expiry, AUTH with a new token keeps the socket past the old one; no AUTH, or one refused, and the socket closes at the expiry", async () => {
    const space = uniqueSpace("tokens");
    const s = await server(space);
    const open = async (token: string) => {
      const raw = await rawSocket(worker.url, `/v1/spaces/${space}/ws?role=client&id=alice`);
      expect((await raw.hello({ token })).slice(0, 2)).toEqual([Msg.REPLY, 1]);
      return raw;
    };
    const first = await s.issueClientToken("alice", { ttlSeconds: 2 });
    const renewing = await open(first);
    const idle = await open(first);
    const wrong = await open(first);
    const renewed = (raw: RawSocket) => until(() => raw.frames.some((f) => f[0] === Msg.RENEW), { timeout: 5000, what: "RENEW" });
    await renewed(renewing);
    expect(Date.now()).toBeLessThan(expiryOf(first));
    renewing.send([Op.AUTH, 2, await s.issueClientToken("alice", { ttlSeconds: 60 })]);
    expect((await renewing.reply(2)).slice(0, 3)).toEqual([Msg.REPLY, 2, null]);
    await renewed(wrong);
    wrong.send([Op.AUTH, 2, await s.issueClientToken("bob", { ttlSeconds: 60 })]);
    expect((await wrong.reply(2)).slice(0, 3)).toEqual([Msg.ERROR, 2, ErrorCode.FORBIDDEN]);
    wrong.send([Op.AUTH, 3, "not a token"]);
    expect((await wrong.reply(3)).slice(0, 3)).toEqual([Msg.ERROR, 3, ErrorCode.UNAUTHORIZED]);
    // Refused AUTHs change nothing: the socket is served until its token expires.
    wrong.send([Op.SIZE, 4, "queue", "default"]);
    expect((await wrong.reply(4)).slice(0, 3)).toEqual([Msg.REPLY, 4, 0]);
    // The ones without a new token close at its expiry; the renewed one lives on.
    expect((await idle.closed).code).toBe(CloseCode.TOKEN_EXPIRED);
    expect((await wrong.closed).code).toBe(CloseCode.TOKEN_EXPIRED);
    expect(Date.now()).toBeGreaterThanOrEqual(expiryOf(first));
    renewing.send([Op.SIZE, 3, "queue", "default"]);
    expect((await renewing.reply(3)).slice(0, 3)).toEqual([Msg.REPLY, 3, 0]);
    renewing.close();
  });

  test("AUTH with a token that expires no later than the one in force changes nothing: a fixed token's RENEW is not asked again at once (no RENEW/AUTH loop), an older token replayed does not shorten the socket", async () => {
    const space = uniqueSpace("tokens");
    const s = await server(space);
    const open = async (token: string) => {
      const raw = await rawSocket(worker.url, `/v1/spaces/${space}/ws?role=client&id=alice`);
      expect((await raw.hello({ token })).slice(0, 2)).toEqual([Msg.REPLY, 1]);
      return raw;
    };
    const fixed = await s.issueClientToken("alice", { ttlSeconds: 4 }); // asked from 1.5 s before its expiry
    const newer = await s.issueClientToken("alice", { ttlSeconds: 60 });
    const looping = await open(fixed);
    const replayed = await open(fixed);
    // As the library does with a fixed token: every RENEW answered with AUTH and the same token.
    let renews = 0;
    let id = 2;
    looping.ws.addEventListener("message", () => {
      if (looping.frames.at(-1)![0] !== Msg.RENEW) return;
      renews++;
      looping.send([Op.AUTH, id++, fixed]);
    });
    // A newer token, then the older one again (an AUTH replayed after a reconnect).
    replayed.send([Op.AUTH, 2, newer]);
    expect((await replayed.reply(2)).slice(0, 3)).toEqual([Msg.REPLY, 2, null]);
    replayed.send([Op.AUTH, 3, fixed]);
    expect((await replayed.reply(3)).slice(0, 3)).toEqual([Msg.REPLY, 3, null]);

    expect((await looping.closed).code).toBe(CloseCode.TOKEN_EXPIRED);
    expect(Date.now()).toBeGreaterThanOrEqual(expiryOf(fixed));
    // Asked once (its AUTH changed nothing), not once per round trip for the last 1.5 s.
    expect(renews).toBe(1);
    // The other lives on, on the newer token.
    replayed.send([Op.SIZE, 4, "queue", "default"]);
    expect((await replayed.reply(4)).slice(0, 3)).toEqual([Msg.REPLY, 4, 0]);
    expect(replayed.frames.some((f) => f[0] === Msg.RENEW)).toBe(false);
    replayed.close();
  }, 15_000);

  test("Client.connect with a token function: rejects with the function's error, and within connectTimeout if the function never answers", async () => {
    const space = uniqueSpace("tokens");
    const failure = new Error("the backend is down");
    await expect(Client.connect(worker.url, { space, token: () => Promise.reject(failure) })).rejects.toBe(failure);
    await expect(Client.connect(worker.url, { space, token: () => { throw failure; } })).rejects.toBe(failure);
    const hung = Client.connect(worker.url, { space, connectTimeout: 300, token: () => new Promise<string>(() => {}) });
    const outcome = await Promise.race([hung.then(() => "connected", (error: unknown) => error), new Promise((resolve) => setTimeout(() => resolve("still waiting"), 3000))]);
    expect(outcome).toBeInstanceOf(ClosedError);
  });

  test("a token function that fails when a reconnect asks it: that socket gives up at once, and the next (backing off) asks again", async () => {
    const space = uniqueSpace("tokens");
    const s = await server(space);
    let first: string | undefined;
    const asked: string[] = [];
    const alice = await Client.connect(worker.url, {
      space,
      token: async () => {
        if (first === undefined) return (first = await s.issueClientToken("alice", { ttlSeconds: 2 }));
        const reconnecting = Date.now() >= expiryOf(first);
        // The renewals on the open sockets fail, then the reconnect's first ask.
        if (!reconnecting || !asked.includes("reconnect: failed")) {
          asked.push(reconnecting ? "reconnect: failed" : "renewal: failed");
          throw new Error("the backend is down");
        }
        asked.push("reconnect: token");
        return s.issueClientToken("alice", { ttlSeconds: 3600 });
      },
    });
    handles.push(alice);
    const statuses: string[] = [];
    alice.on("status", (status) => statuses.push(status));
    await until(() => statuses.includes("connecting"), { timeout: 5000, what: "the sockets ended at the expiry" });
    // Back within the backoff (a second at most here), not when a socket left hanging is given up (40-60 s).
    await until(() => statuses.includes("open"), { timeout: 3000, what: "alice reconnected" });
    expect(statuses).toEqual(["connecting", "open"]);
    expect(asked.filter((a) => a.startsWith("reconnect"))).toEqual(["reconnect: failed", "reconnect: token"]);
    expect(asked[0]).toBe("renewal: failed");
  });

  test("a new token whose HELLO never completed (the link dropped) and that expired meanwhile is refused at the next reconnect: the function gives another, the handle lives", async () => {
    const space = uniqueSpace("tokens");
    const s = await server(space);
    const link = await faultyLink(worker.url);
    try {
      let first: string | undefined;
      let second: string | undefined;
      let third = 0;
      const alice = await Client.connect(link.url, {
        space,
        token: async () => {
          if (first === undefined) return (first = await s.issueClientToken("alice", { ttlSeconds: 2 }));
          // The renewals on the open sockets fail: the sockets end at the expiry (4013).
          if (Date.now() < expiryOf(first)) throw new Error("the backend is down");
          if (second === undefined) {
            // The reconnect's token: the sockets that asked for it are cut before
            // their HELLO goes, and the link stays down until it has expired.
            second = await s.issueClientToken("alice", { ttlSeconds: 2 });
            link.down();
            setTimeout(() => link.up(), Math.max(0, expiryOf(second!) - Date.now()) + 300);
            return second;
          }
          third++;
          return s.issueClientToken("alice", { ttlSeconds: 3600 });
        },
      });
      const statuses: string[] = [];
      alice.on("status", (status) => statuses.push(status));
      await until(() => second !== undefined, { timeout: 10_000, what: "the reconnect's token" });
      await until(() => statuses.at(-1) === "open" || statuses.at(-1) === "closed", { timeout: 15_000, what: "alice back, or closed" });
      expect(statuses).toEqual(["connecting", "open"]);
      expect(third).toBe(1); // one token in place of the expired one, shared by both connections
      alice["back"] = true;
      await alice.sync();
      await alice.close();
    } finally {
      await link.close();
    }
  });

  test("a first connect so slow that the token Client.connect got expired on the way: refused once, the function gives another, and the connect succeeds", async () => {
    const space = uniqueSpace("tokens");
    const s = await server(space);
    const link = await faultyLink(worker.url);
    try {
      link.down();
      const tokens: string[] = [];
      const connecting = Client.connect(link.url, {
        space,
        token: async () => {
          const token = await s.issueClientToken("alice", { ttlSeconds: tokens.length === 0 ? 2 : 3600 });
          if (tokens.push(token) === 1) setTimeout(() => link.up(), Math.max(0, expiryOf(token) - Date.now()) + 300);
          return token;
        },
      });
      const alice = await connecting;
      handles.push(alice);
      expect(tokens).toHaveLength(2);
      expect(Date.now()).toBeGreaterThan(expiryOf(tokens[0]));
      alice["connected"] = true;
      await alice.sync();
    } finally {
      await link.close();
    }
  });

  test("a fixed token refused at a first connect fails it: once more, then an AuthError", async () => {
    const space = uniqueSpace("tokens");
    const s = await server(space);
    const token = await s.issueClientToken("alice", { ttlSeconds: 1 });
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiryOf(token) - Date.now()) + 100));
    const started = Date.now();
    await expect(Client.connect(worker.url, { space, token })).rejects.toMatchObject({ name: "AuthError", code: ErrorCode.UNAUTHORIZED });
    expect(Date.now() - started).toBeLessThan(3000);
  });

  test("HTTP: POST /clients/<id>/token with the server token gives a client token that connects as that id; nothing else gets one", async () => {
    const space = uniqueSpace("tokens");
    const s = await server(space);
    const base = `${worker.url}/v1/spaces/${space}`;
    const bearer = { authorization: `Bearer ${SERVER_TOKEN}` };
    const before = Date.now();
    const response = await fetch(`${base}/clients/alice/token?ttl=120`, { method: "POST", headers: bearer });
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const { token, expires } = (await response.json()) as { token: string; expires: number };
    expect(expires).toBe(expiryOf(token));
    expect(expires).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 120_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 120_000);
    // A token function can call it: the client connects as alice and shares her dict with the server.
    const alice = await Client.connect(worker.url, {
      space,
      token: () => fetch(`${base}/clients/alice/token`, { method: "POST", headers: bearer }).then((r) => r.json()).then((j) => (j as { token: string }).token),
    });
    handles.push(alice);
    expect(alice.id).toBe("alice");
    alice["via"] = "http token";
    await alice.sync();
    const peer = s.clients.get("alice");
    await peer.ready;
    expect(peer["via"]).toBe("http token");
    // The default life is an hour.
    const plain = (await (await fetch(`${base}/clients/bob/token`, { method: "POST", headers: bearer })).json()) as { token: string; expires: number };
    expect(expiryOf(plain.token) - Date.now()).toBeGreaterThan(3590_000);

    const refused = async (path: string, init: RequestInit) => (await fetch(`${base}${path}`, init)).status;
    expect(await refused("/clients/alice/token", { method: "POST" })).toBe(401);
    expect(await refused("/clients/alice/token", { method: "POST", headers: { authorization: `Bearer ${token}` } })).toBe(401); // a client token
    for (const ttl of ["0", "-5", "1.5", "2592001", "1e3", "soon"]) {
      expect([ttl, await refused(`/clients/alice/token?ttl=${ttl}`, { method: "POST", headers: bearer })]).toEqual([ttl, 400]);
    }
    expect(await refused("/clients/alice/token", { headers: bearer })).toBe(404); // GET
    expect(await refused("/clients/alice/token/x", { method: "POST", headers: bearer })).toBe(404);
    expect(await refused("/token", { method: "POST", headers: bearer })).toBe(404); // no id
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
