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
// The randomness is seeded (SOAK_SEED=n to replay one).
import { writeFileSync } from "node:fs";
import { afterEach, describe, expect, test } from "vitest";
import { Client, Server, type SharedDict } from "sharevars";
import { faultyLink, type FaultyLink } from "../helpers/proxy.js";
import { startWorker, SERVER_TOKEN, type LocalWorker } from "../helpers/worker.js";
import { uniqueSpace, until } from "../helpers/e2e.js";
import { prng } from "../helpers/random.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Outcome = "pending" | "ok" | "unknown" | "closed" | "other";
interface Write { stream: string; n: number; outcome: Outcome; error?: unknown }

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
    // Token mode: a token function that asks the worker's HTTP route (on the
    // worker itself, which restarts on the same port). While it is down the
    // request fails: like a backend's client, the function tries again for a
    // while (a connect, which asks it first, would fail with its error).
    let tokensIssued = 0;
    const connectClient = (url: string, id: string) => Client.connect(url, mode === "open" ? { space, id } : {
      space,
      token: async () => {
        for (let attempt = 1; ; attempt++) {
          try {
            const response = await fetch(`${worker.url}/v1/spaces/${space}/clients/${id}/token?ttl=${TOKEN_TTL_S}`, { method: "POST", headers: { authorization: `Bearer ${SERVER_TOKEN}` } });
            if (!response.ok) throw new Error(`token route: ${response.status}`);
            tokensIssued++;
            return ((await response.json()) as { token: string }).token;
          } catch (error) {
            if (attempt >= 50) throw error;
            await sleep(100);
          }
        }
      },
    });
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
    const mirrors: [string, SharedDict, Map<string, unknown>][] = [];
    const mirror = (name: string, dict: SharedDict) => {
      const m = new Map(dict.entries());
      dict.on("change", ({ key, value, deleted }) => (deleted ? m.delete(key) : m.set(key, value)));
      mirrors.push([name, dict, m]);
    };
    mirror("server global", server.dict);
    peers.forEach((p, i) => mirror(`peer c${i}`, p.dict));
    clients.forEach((c, i) => (mirror(`c${i} local`, c.dict), mirror(`c${i} global`, c.globals.dict)));

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
          w.outcome = error?.code === "OUTCOME_UNKNOWN" ? "unknown" : error?.name === "ClosedError" ? "closed" : "other";
        },
      ));
      return promise.catch(() => {});
    };
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
    const byStream = new Map<string, Write[]>();
    for (const w of writes) {
      if (!byStream.has(w.stream)) byStream.set(w.stream, []);
      byStream.get(w.stream)!.push(w);
    }
    const outcomes: Record<string, number> = {};
    for (const [stream, ws] of byStream) {
      const arrived = received.get(stream) ?? [];
      const count = new Map<number, number>();
      for (const n of arrived) count.set(n, (count.get(n) ?? 0) + 1);
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

function sorted(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
