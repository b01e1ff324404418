// A soak under faults: a server and three clients, each through a link of
// its own that drops, slows, holds and cuts at random, write to their dicts,
// talk on pipes and share work on a global queue, while the worker is killed
// (SIGKILL) and started again on the same state twice. One client closes
// and comes back again and again, sometimes offline, sometimes with its
// replies held back. Afterwards:
// - every replica equals the object's state (a fresh handle's snapshot), and
//   a listener that applied every change event to the first snapshot has it too;
// - every item that send()/put() resolved for arrived exactly once, pipes in
//   order; one that failed with ClosedError (never sent) never arrived, one
//   that failed with OUTCOME_UNKNOWN arrived at most once;
// - nothing else failed.
// It runs twice: clients in open mode, and in token mode with tokens that
// live 3 s, so that every client renews its token over its open sockets
// (or, after a fault, by reconnecting with a new one) several times through
// the faults; its token function asks the worker's HTTP route.
// A second soak ("bursts", below) gives the traffic the shapes of real
// applications: many requests in one turn, cuts as they leave, refusals,
// racing receives, a client's handle replaced while the old one still talks,
// and checks the key order of every replica too.
// The randomness is seeded (SOAK_SEED=n to replay one).
import { writeFileSync } from "node:fs";
import { afterEach, describe, expect, test } from "vitest";
import { Client, Server, type SharedDict } from "sharevars";
import { faultyLink, type FaultyLink } from "../helpers/proxy.js";
import { startWorker, SERVER_TOKEN, type LocalWorker } from "../helpers/worker.js";
import { uniqueSpace, until } from "../helpers/e2e.js";
import { prng } from "../helpers/random.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Outcome = "pending" | "ok" | "unknown" | "closed" | "refused" | "other";
interface Write { stream: string; n: number; outcome: Outcome; error?: unknown }

/**
 * Connects client `id` in open mode, or in token mode with a token function
 * that asks the worker's HTTP route (on the worker itself, which restarts on
 * the same port: `workerUrl` is read at each call). While it is down the
 * request fails: like a backend's client, the function tries again for a
 * while (a connect, which asks it first, would fail with its error).
 */
function clientConnector(mode: "open" | "token", space: string, workerUrl: () => string, issued: () => void = () => {}) {
  return (url: string, id: string) => Client.connect(url, mode === "open" ? { space, id } : {
    space,
    token: async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          const response = await fetch(`${workerUrl()}/v1/spaces/${space}/clients/${id}/token?ttl=${TOKEN_TTL_S}`, { method: "POST", headers: { authorization: `Bearer ${SERVER_TOKEN}` } });
          if (!response.ok) throw new Error(`token route: ${response.status}`);
          issued();
          return ((await response.json()) as { token: string }).token;
        } catch (error) {
          if (attempt >= 50) throw error;
          await sleep(100);
        }
      }
    },
  });
}

/** Change-event mirrors of replicas: each starts from the replica and applies every change event to it. */
function changeMirrors() {
  const mirrors: [string, SharedDict, Map<string, unknown>][] = [];
  const mirror = (name: string, dict: SharedDict) => {
    const m = new Map(dict.entries());
    dict.on("change", ({ key, value, deleted }) => (deleted ? m.delete(key) : m.set(key, value)));
    mirrors.push([name, dict, m]);
  };
  return { mirrors, mirror };
}

/**
 * Every item sent or put, with its outcome once its promise settles
 * (`classify` names a failure); `track` returns a promise that never rejects.
 */
function writeTracker(note: (what: string) => void, classify: (error: any) => Outcome) {
  const writes: Write[] = [];
  const promises: Promise<unknown>[] = [];
  const track = (stream: string, n: number, promise: Promise<unknown>) => {
    const w: Write = { stream, n, outcome: "pending" };
    writes.push(w);
    if (process.env.SOAK_DEBUG) note(`send ${stream} ${n}`);
    promises.push(promise.then(
      () => (w.outcome = "ok", process.env.SOAK_DEBUG && note(`stored ${stream} ${n}`)),
      (error) => {
        w.error = error;
        w.outcome = classify(error);
        if (process.env.SOAK_DEBUG) note(`${w.outcome} ${stream} ${n}`);
      },
    ));
    return promise.catch(() => {});
  };
  return { writes, promises, track };
}

/** The writes of each stream, and how many times each of their numbers arrived. */
function arrivals(writes: Write[], received: Map<string, number[]>) {
  const byStream = new Map<string, Write[]>();
  for (const w of writes) {
    if (!byStream.has(w.stream)) byStream.set(w.stream, []);
    byStream.get(w.stream)!.push(w);
  }
  return [...byStream].map(([stream, ws]) => {
    const arrived = received.get(stream) ?? [];
    const count = new Map<number, number>();
    for (const n of arrived) count.set(n, (count.get(n) ?? 0) + 1);
    return { stream, writes: ws, arrived, count };
  });
}

const workers: LocalWorker[] = [];
const links: FaultyLink[] = [];
const toClose: { close(o?: { flushTimeout?: number }): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(toClose.splice(0).map((h) => h.close({ flushTimeout: 0 }).catch(() => {})));
  await Promise.all(links.splice(0).map((l) => l.close()));
  await Promise.all(workers.splice(0).map((w) => w.stop("SIGKILL")));
});

const SEEDS = process.env.SOAK_SEED ? [Number(process.env.SOAK_SEED)] : [1];
const CASES = SEEDS.flatMap((seed) => [[seed, "open"], [seed, "token"]] as const);
/** How long a client token lives in token mode (s): renewals come every couple of seconds. */
const TOKEN_TTL_S = 3;
// (Faults are timed, so a seed fixes their kinds and the workload's choices, not every interleaving.)
const RUN_MS = Number(process.env.SOAK_MS ?? 14_000);

describe("soak", () => {
  test.each(CASES)("seed %i, clients in %s mode: dicts, pipes and queues under link faults and worker restarts keep their guarantees", async (seed, mode) => {
    const rng = prng(seed);
    const vars: Record<string, string> = mode === "token" ? { CLIENT_AUTH: "token" } : {};
    let worker = await startWorker({ vars });
    workers.push(worker);
    const space = uniqueSpace("soak");
    const link = async () => {
      const l = await faultyLink(worker.url); // the port outlives restarts
      links.push(l);
      return l;
    };
    const serverLink = await link();
    const clientLinks = [await link(), await link()];
    const churnLink = await link();

    const server = await Server.connect(serverLink.url, { space, token: SERVER_TOKEN });
    toClose.push(server);
    let tokensIssued = 0;
    const connectClient = clientConnector(mode, space, () => worker.url, () => tokensIssued++);
    const clients = await Promise.all(clientLinks.map(async (l, i) => {
      const c = await connectClient(l.url, `c${i}`);
      toClose.push(c);
      return c;
    }));
    let churn = await connectClient(churnLink.url, "c2");
    toClose.push(churn);
    const peers = ["c0", "c1", "c2"].map((id) => server.clients.get(id));
    await Promise.all(peers.map((p) => p.ready));

    // Change-event mirrors of every replica (the churning client's are not kept: its handles come and go).
    const { mirrors, mirror } = changeMirrors();
    mirror("server global", server.dict);
    peers.forEach((p, i) => mirror(`peer c${i}`, p.dict));
    clients.forEach((c, i) => (mirror(`c${i} local`, c.dict), mirror(`c${i} global`, c.globals.dict)));

    const { writes, promises, track } = writeTracker((what) => note(what), (error) => error?.code === "OUTCOME_UNKNOWN" ? "unknown" : error?.name === "ClosedError" ? "closed" : "other");
    const received = new Map<string, number[]>(); // stream -> numbers in arrival order
    const got = (stream: string, n: number) => {
      if (!received.has(stream)) received.set(stream, []);
      received.get(stream)!.push(n);
      note(`got ${stream} ${n}`);
    };
    const failures: string[] = [];
    const t0 = Date.now();
    const trace: string[] = [];
    const note = (what: string) => trace.push(`${Date.now() - t0} ${what}`);

    let stop = false;
    const loops: Promise<void>[] = [];
    const busy = new Map<string, string>(); // loop -> what it waits on
    const loop = (name: string, body: () => Promise<unknown>) => loops.push((async () => {
      busy.set(name, "running");
      while (!stop) await body();
      busy.delete(name);
    })());

    // 1. Link faults, each link on its own.
    const log: string[] = [];
    const ev = (what: string) => (log.push(what), note(what));
    server.on("status", (st) => note(`server ${st}`));
    clients.forEach((c, i) => c.on("status", (st) => note(`c${i} ${st}`)));
    for (const [name, l] of [["server", serverLink], ["c0", clientLinks[0]], ["c1", clientLinks[1]], ["c2", churnLink]] as const) {
      const r = prng(seed * 31 + name.charCodeAt(1));
      loop(`faults ${name}`, async () => {
        await sleep(300 + r.int(1200));
        if (stop) return;
        switch (r.int(5)) {
          case 0: l.cut(); ev(`${name} cut`); break;
          case 1: l.down(); await sleep(100 + r.int(800)); l.up(); ev(`${name} down`); break;
          case 2: l.latency(r.int(80)); break;
          case 3: l.hold(); await sleep(50 + r.int(500)); l.release(); ev(`${name} held`); break;
          default: break;
        }
      });
    }

    // 2. Dict writes on both sides: local (client and peer) and global.
    const keys = ["a", "b", "c", "d", "e", "f"];
    const writers: [string, () => SharedDict][] = [
      ["server", () => server.dict],
      ...peers.map((p, i) => [`peer${i}`, () => p.dict] as [string, () => SharedDict]),
      ...clients.flatMap((c, i) => [[`c${i}l`, () => c.dict], [`c${i}g`, () => c.globals.dict]] as [string, () => SharedDict][]),
      ["c2l", () => churn.dict],
      ["c2g", () => churn.globals.dict],
    ];
    let dictOps = 0;
    loop("dict", async () => {
      await sleep(5 + rng.int(30));
      const [who, dict] = rng.pick(writers);
      const d = dict();
      const key = rng.pick(keys);
      const value = { who, n: dictOps++ };
      try {
        const op = rng.int(100);
        if (op < 60) d.set(key, value);
        else if (op < 78) d.delete(key);
        else if (op < 93) d.update({ [key]: value, [rng.pick(keys)]: [value] });
        else if (op < 96) d.pop(key);
        else if (op < 98) d.setdefault(key, value);
        else d.clear();
      } catch (error) {
        if (!(who.startsWith("c2") && (error as Error)?.name === "ClosedError")) failures.push(`dict write ${who}: ${error}`);
      }
    });

    // 3. Pipes: every client sends 0, 1, 2... to the server on pipe "p", a few at a time without waiting.
    const sent = new Map<string, number>();
    const sendSome = (stream: string, send: (n: number) => Promise<void>) => {
      const k = 1 + rng.int(3);
      const all: Promise<unknown>[] = [];
      for (let j = 0; j < k; j++) {
        const n = sent.get(stream) ?? 0;
        sent.set(stream, n + 1);
        all.push(track(stream, n, send(n)));
      }
      return Promise.all(all);
    };
    for (const [i, c] of clients.entries()) {
      loop(`send up c${i}`, async () => {
        await sendSome(`up c${i}`, (n) => c.pipes["p"].send(n));
        await sleep(rng.int(60));
      });
      // ...and the server to clients c0 and c1 on the same pipe.
      loop(`send down c${i}`, async () => {
        await sendSome(`down c${i}`, (n) => peers[i].pipes["p"].send(n));
        await sleep(rng.int(60));
      });
    }
    // Receivers, with random timeouts (a timed-out wait never swallows an item).
    const receiver = (stream: string, recv: (o: { timeout: number }) => Promise<any>) => loop(`recv ${stream}`, async () => {
      try {
        const item = await recv({ timeout: 20 + rng.int(800) });
        got(stream, typeof item === "number" ? item : item.n);
      } catch (error) {
        if ((error as Error)?.name !== "TimeoutError") failures.push(`${stream} receive: ${error}`);
        await sleep(20); // offline, a timeout rejects at once
      }
    });
    for (const [i, p] of peers.entries()) receiver(`up c${i}`, (o) => p.pipes["p"].recv(o));
    for (const [i, c] of clients.entries()) receiver(`down c${i}`, (o) => c.pipes["p"].recv(o));

    // 4. The global queue "work": the server and clients c0, c1 put (c2 too, below); the server, c0 and c1 take.
    const producers: [string, (v: unknown) => Promise<void>][] = [
      ["server", (v) => server.queues["work"].put(v)],
      ...clients.map((c, i) => [`c${i}`, (v: unknown) => c.globals.queues["work"].put(v)] as [string, (v: unknown) => Promise<void>]),
    ];
    for (const [who, put] of producers) {
      loop(`put ${who}`, async () => {
        await sendSome(`work ${who}`, (n) => put({ who, n }));
        await sleep(rng.int(80));
      });
    }
    const consumers: [string, (o: { timeout: number }) => Promise<any>][] = [
      ["server", (o) => server.queues["work"].get(o)],
      ...clients.map((c, i) => [`c${i}`, (o: { timeout: number }) => c.globals.queues["work"].get(o)] as [string, (o: { timeout: number }) => Promise<any>]),
    ];
    for (const [who, get] of consumers) {
      loop(`get ${who}`, async () => {
        try {
          const item = await get({ timeout: 20 + rng.int(800) });
          got(`work ${item.who}`, item.n);
        } catch (error) {
          if ((error as Error)?.name !== "TimeoutError") failures.push(`work get ${who}: ${error}`);
          await sleep(20);
        }
      });
    }

    // 5. The churning client c2: sends on its pipe and puts on the global queue, and every few
    // seconds closes (offline, with its replies held, or normally) and connects again.
    loop("c2 sender", async () => {
      const c = churn;
      if (c.status === "closed") return sleep(20);
      const jobs = [
        sendSome("up c2", (n) => c.pipes["p"].send(n)),
        sendSome("work c2", (n) => c.globals.queues["work"].put({ who: "c2", n })),
      ];
      await Promise.all(jobs);
      await sleep(rng.int(60));
    });
    loop("c2 closer", async () => {
      await sleep(1500 + rng.int(2500));
      if (stop) return;
      const mode = rng.pick(["offline", "held", "normal"] as const);
      if (mode === "offline") {
        churnLink.down();
        await until(() => churn.status !== "open", { what: "c2 offline" });
      } else if (mode === "held") {
        churnLink.hold();
      }
      // A few more writes in this state, then close.
      for (let j = 0; j < 3; j++) {
        sendSome("up c2", (n) => churn.pipes["p"].send(n));
        sendSome("work c2", (n) => churn.globals.queues["work"].put({ who: "c2", n }));
      }
      await sleep(mode === "held" ? 50 : 0);
      const old = churn;
      await old.close({ flushTimeout: mode === "normal" ? 5000 : rng.int(200) });
      ev(`c2 closed ${mode}`);
      churnLink.up();
      churnLink.release();
      churn = await connectClient(churnLink.url, "c2");
      toClose.push(churn);
    });

    // 6. The worker killed and started again on the same state, twice.
    const started = Date.now();
    for (const at of [0.3, 0.65]) {
      await sleep(Math.max(0, started + at * RUN_MS - Date.now()));
      await worker.stop("SIGKILL");
      ev("worker killed");
      worker = await startWorker({ persistTo: worker.persistTo, port: worker.port, vars });
      workers.push(worker);
      ev("worker started");
    }
    await sleep(Math.max(0, started + RUN_MS - Date.now()));

    // The end: faults stop, every write settles.
    stop = true;
    for (const l of [serverLink, ...clientLinks, churnLink]) {
      l.up();
      l.latency(0);
      l.release();
    }
    const context = () => `seed ${seed}; ${log.join(", ")}`;
    await Promise.race([Promise.all(loops), sleep(20_000).then(() => { throw new Error(`loops did not end: ${[...busy.keys()]}; pending: ${writes.filter((w) => w.outcome === "pending").map((w) => `${w.stream} #${w.n}`)}; ${context()}`); })]);
    await Promise.race([Promise.all(promises), sleep(15_000).then(() => { throw new Error(`writes did not settle: ${context()}`); })]);
    const handles = [server, ...clients, churn];
    const syncs = await Promise.allSettled(handles.map((h) => h.sync()));
    for (const s of syncs) if (s.status === "rejected") failures.push(`sync: ${s.reason}`);

    // Replicas converge to the object's state, seen by fresh handles on the worker itself.
    const freshServer = await Server.connect(worker.url, { space, token: SERVER_TOKEN });
    toClose.push(freshServer);
    const freshPeers = ["c0", "c1", "c2"].map((id) => freshServer.clients.get(id));
    await Promise.all(freshPeers.map((p) => p.ready));
    const expectedGlobal = freshServer.dict.toObject();
    const expectedLocal = freshPeers.map((p) => p.dict.toObject());
    const replicas: [string, SharedDict, Record<string, unknown>][] = [
      ["server global", server.dict, expectedGlobal],
      ...peers.map((p, i) => [`peer c${i}`, p.dict, expectedLocal[i]] as [string, SharedDict, Record<string, unknown>]),
      ...clients.flatMap((c, i) => [[`c${i} local`, c.dict, expectedLocal[i]], [`c${i} global`, c.globals.dict, expectedGlobal]] as [string, SharedDict, Record<string, unknown>][]),
      ["c2 local", churn.dict, expectedLocal[2]],
      ["c2 global", churn.globals.dict, expectedGlobal],
    ];
    expect(failures, context()).toEqual([]);
    await until(() => replicas.every(([, d, e]) => JSON.stringify(sorted(d.toObject())) === JSON.stringify(sorted(e))), { timeout: 10_000, what: "replicas to converge" })
      .catch(() => {});
    for (const [name, d, e] of replicas) expect(sorted(d.toObject()), `${name}: ${context()}`).toStrictEqual(sorted(e));
    for (const [name, d, m] of mirrors) expect(sorted(Object.fromEntries(m)), `${name}'s change events: ${context()}`).toStrictEqual(sorted(d.toObject()));

    // Whatever is still in the pipes and the queue: received by fresh handles after the others close.
    await Promise.all([server.close(), ...clients.map((c) => c.close()), churn.close()]);
    const freshClients = await Promise.all(["c0", "c1"].map(async (id) => {
      const c = await connectClient(worker.url, id);
      toClose.push(c);
      return c;
    }));
    const drain = async (stream: string, take: () => Promise<any>) => {
      for (;;) {
        let item;
        try {
          item = await take();
        } catch {
          return;
        }
        got(stream, typeof item === "number" ? item : item.n);
      }
    };
    for (const [i, p] of freshPeers.entries()) await drain(`up c${i}`, () => p.pipes["p"].recv({ timeout: 300 }));
    for (const [i, c] of freshClients.entries()) await drain(`down c${i}`, () => c.pipes["p"].recv({ timeout: 300 }));
    for (;;) {
      let item;
      try {
        item = await freshServer.queues["work"].get({ timeout: 300 });
      } catch {
        break;
      }
      got(`work ${item.who}`, item.n);
    }

    // Every write accounted for.
    // SOAK_DEBUG=1: every send, store, receive, status change and fault, timed, in /tmp/soak-trace-<seed>.txt.
    if (process.env.SOAK_DEBUG) writeFileSync(`/tmp/soak-trace-${seed}.txt`, trace.join("\n"));
    expect(failures, context()).toEqual([]);
    const outcomes: Record<string, number> = {};
    for (const { stream, writes: ws, arrived, count } of arrivals(writes, received)) {
      for (const w of ws) {
        outcomes[w.outcome] = (outcomes[w.outcome] ?? 0) + 1;
        const c = count.get(w.n) ?? 0;
        const what = `${stream} #${w.n} (${w.outcome}${w.error ? `: ${w.error}` : ""}) arrived ${c} times; ${context()}`;
        if (w.outcome === "ok") expect(c, what).toBe(1);
        else if (w.outcome === "closed") expect(c, what).toBe(0);
        else if (w.outcome === "unknown") expect(c, what).toBeLessThanOrEqual(1);
        else expect.fail(what);
        // Only the churning client's handles close with writes pending.
        if (w.outcome !== "ok") expect(stream.endsWith("c2"), what).toBe(true);
      }
      for (const n of count.keys()) expect(ws.some((w) => w.n === n), `${stream}: #${n} arrived but was never sent`).toBe(true);
      // A pipe is in order (the queue too: one producer's items, taken by whoever, in the order put... not checked).
      if (stream.startsWith("up") || stream.startsWith("down")) {
        expect(arrived, `${stream} in order: ${context()}`).toStrictEqual([...arrived].sort((a, b) => a - b));
      }
    }
    // Token mode: the clients lived through several tokens each (a renewal every couple of seconds).
    if (mode === "token") expect(tokensIssued, context()).toBeGreaterThanOrEqual(3 * Math.floor(RUN_MS / 1000 / TOKEN_TTL_S));
    console.log(`soak seed ${seed} (${mode}${mode === "token" ? `, ${tokensIssued} tokens` : ""}): ${writes.length} items ${JSON.stringify(outcomes)}, ${dictOps} dict writes; ${log.length} events: ${log.join(", ")}`);
  }, 60_000);
});

// A second soak, with the shapes real applications give their traffic: bursts
// (many writes, puts and sends made in one turn, which leave as one BATCH),
// links cut right as a burst leaves, Promise.all of puts, dict updates of
// many keys, keys deleted and set again on both ends of a dict at once,
// receives with short timeouts and aborts racing the items, and a client
// id whose handle is replaced by a new one while the old one's requests are
// still on their way (its link slowed, its replies held). Afterwards, as
// above, and every replica lists the object's keys in the object's order.
// (SOAK_BURST_MODE=token: clients in token mode, as above.)
const BURST_MS = Number(process.env.SOAK_BURST_MS ?? 12_000);
const BURST_CASES = SEEDS.map((seed) => [seed, process.env.SOAK_BURST_MODE === "token" ? "token" : "open"] as const);

describe("soak, bursts", () => {
  test.each(BURST_CASES)("seed %i, clients in %s mode: bursts, cuts as they leave, racing receives and a replaced handle keep the guarantees", async (seed, mode) => {
    const rng = prng(seed * 7919 + 1);
    // Limits low enough that the object refuses some writes (a full queue or pipe, a dict
    // with too many keys from writes the writer had not seen): the refusal of a write whose
    // reply was lost comes in the next HELLO, and the write disappears from the replicas.
    const vars: Record<string, string> = { LIMIT_MAX_KEYS_PER_DICT: "9", LIMIT_MAX_ITEMS_PER_CHANNEL: "300", ...(mode === "token" ? { CLIENT_AUTH: "token" } : {}) };
    let worker = await startWorker({ vars });
    workers.push(worker);
    const space = uniqueSpace("soak-bursts");
    const link = async () => {
      const l = await faultyLink(worker.url);
      links.push(l);
      return l;
    };
    const serverLink = await link();
    const clientLinks = [await link(), await link()];
    const churnLinks = [await link(), await link()]; // the replaced handle's, and its successor's
    const server = await Server.connect(serverLink.url, { space, token: SERVER_TOKEN });
    toClose.push(server);
    const connectClient = clientConnector(mode, space, () => worker.url);
    const clients = await Promise.all(clientLinks.map(async (l, i) => {
      const c = await connectClient(l.url, `c${i}`);
      toClose.push(c);
      return c;
    }));
    let generation = 0;
    let churnOn = 0; // index in churnLinks of the current churn handle's link
    let churn = await connectClient(churnLinks[churnOn].url, "c2");
    toClose.push(churn);
    const peers = ["c0", "c1", "c2"].map((id) => server.clients.get(id));
    await Promise.all(peers.map((p) => p.ready));

    const t0 = Date.now();
    const trace: string[] = [];
    const note = (what: string) => trace.push(`${Date.now() - t0} ${what}`);
    const log: string[] = [];
    const ev = (what: string) => (log.push(what), note(what));
    const failures: string[] = [];

    const { mirrors, mirror } = changeMirrors();
    mirror("server global", server.dict);
    peers.forEach((p, i) => mirror(`peer c${i}`, p.dict));
    clients.forEach((c, i) => (mirror(`c${i} local`, c.dict), mirror(`c${i} global`, c.globals.dict)));

    const { writes, promises, track } = writeTracker((what) => note(what), (error) =>
      error?.code === "OUTCOME_UNKNOWN" ? "unknown" : error?.name === "ClosedError" ? "closed" : error?.code === "QUEUE_FULL" ? "refused" : "other");
    const sent = new Map<string, number>();
    const item = (stream: string, send: (v: { n: number; s: string }) => Promise<void>) => {
      const n = sent.get(stream) ?? 0;
      sent.set(stream, n + 1);
      return track(stream, n, send({ n, s: stream }));
    };
    const received = new Map<string, number[]>();
    const got = (value: { n: number; s: string }) => {
      if (!received.has(value.s)) received.set(value.s, []);
      received.get(value.s)!.push(value.n);
      note(`got ${value.s} ${value.n}`);
    };

    let stop = false;
    const loops: Promise<void>[] = [];
    const loop = (body: () => Promise<unknown>) => loops.push((async () => {
      while (!stop) await body();
    })());

    // Who writes where: each handle's dicts (a client's own, from both ends), its pipe and the queues.
    interface Actor {
      name: string;
      link: () => FaultyLink;
      status: () => string;
      dicts: () => [string, SharedDict][];
      channels: () => [string, (v: { n: number; s: string }) => Promise<void>][];
    }
    const dictWrites = { n: 0 };
    const actors: Actor[] = [
      {
        name: "server",
        link: () => serverLink,
        status: () => server.status,
        dicts: () => [["global", server.dict], ...peers.map((p, i) => [`peer c${i}`, p.dict] as [string, SharedDict])],
        channels: () => [
          ["work server", (v) => server.queues["work"].put(v)],
          ["down c0", (v) => peers[0].pipes["p"].send(v)],
          ["down c1", (v) => peers[1].pipes["p"].send(v)],
        ],
      },
      ...clients.map((c, i): Actor => ({
        name: `c${i}`,
        link: () => clientLinks[i],
        status: () => c.status,
        dicts: () => [[`c${i} local`, c.dict], [`c${i} global`, c.globals.dict]],
        channels: () => [
          [`up c${i}`, (v) => c.pipes["p"].send(v)],
          [`work c${i}`, (v) => c.globals.queues["work"].put(v)],
        ],
      })),
      {
        name: "c2",
        link: () => churnLinks[churnOn],
        status: () => churn.status,
        dicts: () => [["c2 local", churn.dict], ["c2 global", churn.globals.dict]],
        channels: () => {
          const c = churn;
          const g = generation;
          return [
            [`up c2.${g}`, (v) => c.pipes["p"].send(v)],
            [`work c2.${g}`, (v) => c.globals.queues["work"].put(v)],
          ];
        },
      },
    ];
    // A key set is small, so both ends of a dict keep writing the same keys;
    // "7" and "10" are integer-like (a plain object would list them first).
    const keys = ["a", "b", "c", "d", "e", "f", "g", "h", "7", "10"];
    const dictOp = (who: string, d: SharedDict) => {
      const value = { who, n: dictWrites.n++ };
      const op = rng.int(100);
      if (op < 35) d.set(rng.pick(keys), value);
      else if (op < 55) d.delete(rng.pick(keys));
      else if (op < 75) {
        // Deleted and set again in the same turn: it goes last.
        const key = rng.pick(keys);
        d.delete(key);
        d.set(key, value);
      } else if (op < 93) {
        const many = keys.filter(() => rng.int(2) === 0);
        d.update(many.map((k, j) => [k, { ...value, j }] as [string, unknown]));
      } else if (op < 97) d.pop(rng.pick(keys));
      else d.clear();
    };
    // A status listener per actor: open since when (cuts only hit a connection that has been
    // up for a second, or the backoff grows and the run slows down).
    const openSince = new Map<string, number>();
    const watch = (name: string, h: { status: string; on(e: "status", f: (s: string) => void): unknown }) => {
      openSince.set(name, h.status === "open" ? Date.now() : Infinity);
      h.on("status", (st: string) => {
        note(`${name} ${st}`);
        openSince.set(name, st === "open" ? Date.now() : Infinity);
      });
    };
    watch("server", server);
    clients.forEach((c, i) => watch(`c${i}`, c));
    watch("c2", churn);

    // 1. Bursts: each actor, every few ms, makes 1 to 40 writes, puts and sends in one turn.
    for (const actor of actors) {
      loop(async () => {
        await sleep(rng.int(3) === 0 ? 0 : 5 + rng.int(60));
        if (stop) return;
        // Now and then a burst too large for one BATCH (over 1000 requests): it leaves as two or more.
        const size = rng.int(60) === 0 ? 900 + rng.int(400) : rng.int(4) === 0 ? 10 + rng.int(30) : 1 + rng.int(5);
        const dicts = actor.dicts();
        const channels = actor.channels();
        const all: Promise<unknown>[] = [];
        for (let j = 0; j < size; j++) {
          try {
            if (rng.int(size > 100 ? 5 : 2) !== 1) { // (a huge burst: mostly dict writes, or the queues fill)
              const [name, d] = rng.pick(dicts);
              dictOp(name, d);
            } else {
              const [stream, send] = rng.pick(channels);
              all.push(item(stream, send));
            }
          } catch (error) {
            // (A dict write over the key limit, as this replica sees it, is refused where it is made.)
            const code = (error as { code?: string })?.code;
            if (code !== "TOO_MANY_KEYS" && !(actor.name === "c2" && code === "CLOSED")) failures.push(`${actor.name} write: ${error}`);
          }
        }
        // Cut right as the burst leaves: in this turn (before it is handed to the socket), once it
        // has been, or a moment later.
        // (Mostly on a connection up for a second: cut sooner, the backoff grows.)
        const up = Date.now() - (openSince.get(actor.name) ?? Infinity);
        if (size > 3 && rng.int(4) === 0 && up > (rng.int(4) === 0 ? 150 : 1000)) {
          const when = rng.int(3);
          const cut = () => actor.link().cut() > 0 && ev(`${actor.name} cut after a burst of ${size} (${["sync", "immediate", "timer"][when]})`);
          if (when === 0) cut();
          else if (when === 1) setImmediate(cut);
          else setTimeout(cut, rng.int(8));
        }
        // Sometimes waits for the burst's puts and sends (Promise.all), as an app that needs them stored.
        if (rng.int(3) === 0) await Promise.all(all);
      });
    }

    // 2. Receivers: short timeouts (0 too), and aborts that race the items.
    const receive = (name: string, take: (o: { timeout?: number; signal?: AbortSignal }) => Promise<any>) => loop(async () => {
      const o: { timeout?: number; signal?: AbortSignal } = {};
      const r = rng.int(10);
      let abort: ReturnType<typeof setTimeout> | undefined;
      if (r < 2) o.timeout = 0;
      else if (r < 5) o.timeout = 1 + rng.int(30);
      else if (r < 8) {
        const controller = new AbortController();
        o.signal = controller.signal;
        abort = setTimeout(() => controller.abort(new Error("aborted")), rng.int(40));
      } else o.timeout = 200 + rng.int(600);
      try {
        got(await take(o));
      } catch (error) {
        const name_ = (error as Error)?.name;
        if (name_ !== "TimeoutError" && (error as Error)?.message !== "aborted") failures.push(`${name} receive: ${error}`);
        await sleep(rng.int(3) === 0 ? 0 : 5);
      } finally {
        clearTimeout(abort);
      }
    });
    for (const [i, p] of peers.entries()) receive(`peer c${i}`, (o) => p.pipes["p"].recv(o));
    for (const [i, c] of clients.entries()) receive(`c${i}`, (o) => c.pipes["p"].recv(o));
    receive("server work", (o) => server.queues["work"].get(o));
    for (const [i, c] of clients.entries()) receive(`c${i} work`, (o) => c.globals.queues["work"].get(o));

    // 3. Link faults besides the cuts: held replies and latency, now and then.
    for (const [name, l] of [["server", serverLink], ["c0", clientLinks[0]], ["c1", clientLinks[1]]] as const) {
      const r = prng(seed * 131 + name.charCodeAt(1));
      loop(async () => {
        await sleep(500 + r.int(1500));
        if (stop) return;
        switch (r.int(4)) {
          case 0: l.hold(); await sleep(20 + r.int(300)); l.release(); ev(`${name} held`); break;
          // Replies held, then the link cut: they are lost, and the handle learns on its HELLO what was stored.
          case 3: l.hold(); await sleep(20 + r.int(200)); l.cut(); l.release(); ev(`${name} held and cut`); break;
          case 1: l.latency(r.int(40)); break;
          default: l.latency(0);
        }
      });
    }

    // 4. The client c2's handle is replaced, every second or two: a new handle with the same id
    // on the other link, and the old one closed while its link is slowed or its replies held
    // (its last requests and its close still on their way as the new one works).
    loop(async () => {
      await sleep(800 + rng.int(1500));
      if (stop) return;
      const old = churn;
      const oldLink = churnLinks[churnOn];
      const how = rng.pick(["slow", "held", "cut", "plain"] as const);
      if (how === "slow") oldLink.latency(20 + rng.int(150));
      if (how === "held") oldLink.hold();
      for (let j = 0; j < 5; j++) {
        for (const [stream, send] of actors[3].channels()) item(stream, send);
      }
      try {
        dictOp("c2 local", old.dict);
      } catch (error) {
        if ((error as { code?: string })?.code !== "TOO_MANY_KEYS") failures.push(`c2 write: ${error}`);
      }
      const next = await connectClient(churnLinks[1 - churnOn].url, "c2");
      toClose.push(next);
      churnOn = 1 - churnOn;
      churn = next;
      generation++;
      watch("c2", next);
      if (how === "cut") oldLink.cut();
      await old.close({ flushTimeout: rng.int(3) === 0 ? 0 : rng.int(300) });
      ev(`c2 replaced (${how})`);
      await sleep(rng.int(200));
      oldLink.latency(0);
      oldLink.release();
    });

    // 5. The worker killed and started again, twice.
    for (const at of [0.35, 0.7]) {
      await sleep(Math.max(0, t0 + at * BURST_MS - Date.now()));
      await worker.stop("SIGKILL");
      ev("worker killed");
      worker = await startWorker({ persistTo: worker.persistTo, port: worker.port, vars });
      workers.push(worker);
      ev("worker started");
    }
    await sleep(Math.max(0, t0 + BURST_MS - Date.now()));

    stop = true;
    for (const l of [serverLink, ...clientLinks, ...churnLinks]) {
      l.up();
      l.latency(0);
      l.release();
    }
    const context = () => `seed ${seed}; ${log.join(", ")}`;
    const dump = () => {
      if (process.env.SOAK_DEBUG) writeFileSync(`/tmp/soak-bursts-trace-${seed}.txt`, trace.join("\n"));
    };
    try {
      await Promise.race([Promise.all(loops), sleep(20_000).then(() => { throw new Error(`loops did not end: ${context()}`); })]);
      await Promise.race([Promise.all(promises), sleep(15_000).then(() => { throw new Error(`writes did not settle: ${writes.filter((w) => w.outcome === "pending").map((w) => `${w.stream} #${w.n}`)}; ${context()}`); })]);
    } finally {
      dump();
    }
    const handles = [server, ...clients, churn];
    for (const s of await Promise.allSettled(handles.map((h) => h.sync()))) if (s.status === "rejected" && s.reason?.code !== "TOO_MANY_KEYS") failures.push(`sync: ${s.reason}`);

    const freshServer = await Server.connect(worker.url, { space, token: SERVER_TOKEN });
    toClose.push(freshServer);
    const freshPeers = ["c0", "c1", "c2"].map((id) => freshServer.clients.get(id));
    await Promise.all(freshPeers.map((p) => p.ready));
    const replicas: [string, SharedDict, SharedDict][] = [
      ["server global", server.dict, freshServer.dict],
      ...peers.map((p, i) => [`peer c${i}`, p.dict, freshPeers[i].dict] as [string, SharedDict, SharedDict]),
      ...clients.flatMap((c, i) => [[`c${i} local`, c.dict, freshPeers[i].dict], [`c${i} global`, c.globals.dict, freshServer.dict]] as [string, SharedDict, SharedDict][]),
      ["c2 local", churn.dict, freshPeers[2].dict],
      ["c2 global", churn.globals.dict, freshServer.dict],
    ];
    expect(failures, context()).toEqual([]);
    // Equal entries, in the same order (keys(), not a plain object, which lists "7" and "10" first).
    const listing = (d: SharedDict) => JSON.stringify([...d.entries()]);
    await until(() => replicas.every(([, d, e]) => listing(d) === listing(e)), { timeout: 10_000, what: "replicas to converge" }).catch(() => {});
    for (const [name, d, e] of replicas) {
      expect(sorted(d.toObject()), `${name}: ${context()}`).toStrictEqual(sorted(e.toObject()));
      expect([...d.keys()], `${name}'s key order: ${context()}`).toStrictEqual([...e.keys()]);
    }
    for (const [name, d, m] of mirrors) expect(sorted(Object.fromEntries(m)), `${name}'s change events: ${context()}`).toStrictEqual(sorted(d.toObject()));

    await Promise.all([server.close(), ...clients.map((c) => c.close()), churn.close()]);
    const drain = async (take: () => Promise<any>) => {
      for (;;) {
        let value;
        try {
          value = await take();
        } catch {
          return;
        }
        got(value);
      }
    };
    const freshClients = await Promise.all(["c0", "c1"].map(async (id) => {
      const c = await connectClient(worker.url, id);
      toClose.push(c);
      return c;
    }));
    for (const p of freshPeers) await drain(() => p.pipes["p"].recv({ timeout: 300 }));
    for (const c of freshClients) await drain(() => c.pipes["p"].recv({ timeout: 300 }));
    await drain(() => freshServer.queues["work"].get({ timeout: 300 }));
    dump();

    const outcomes: Record<string, number> = {};
    const problems: string[] = [];
    const streams = arrivals(writes, received);
    for (const { stream, writes: ws, arrived, count } of streams) {
      for (const w of ws) {
        outcomes[w.outcome] = (outcomes[w.outcome] ?? 0) + 1;
        const c = count.get(w.n) ?? 0;
        const what = `${stream} #${w.n} (${w.outcome}${w.error ? `: ${w.error}` : ""}) arrived ${c} times`;
        if (w.outcome === "ok" ? c !== 1 : w.outcome === "closed" || w.outcome === "refused" ? c !== 0 : w.outcome === "unknown" ? c > 1 : true) problems.push(what);
        else if ((w.outcome === "closed" || w.outcome === "unknown") && !stream.includes("c2.")) problems.push(`${what}: only the replaced handles close with writes pending`);
      }
      for (const n of count.keys()) if (!ws.some((w) => w.n === n)) problems.push(`${stream}: #${n} arrived but was never sent`);
      if (/^(up|down) /.test(stream) && JSON.stringify(arrived) !== JSON.stringify([...arrived].sort((a, b) => a - b))) {
        problems.push(`${stream} out of order: ${arrived.join(" ")}`);
      }
    }
    for (const stream of received.keys()) if (!streams.some((s) => s.stream === stream)) problems.push(`${stream}: arrived, never sent`);
    expect(problems, context()).toEqual([]);
    console.log(`soak bursts seed ${seed} (${mode}): ${writes.length} items ${JSON.stringify(outcomes)}, ${dictWrites.n} dict writes, ${generation} replaced handles; ${log.length} events: ${log.join(", ")}`);
  }, 60_000);
});

function sorted(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
