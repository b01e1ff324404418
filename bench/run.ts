// `npm run bench [-- --quick]`: starts the bench worker on 127.0.0.1, runs
// every scenario through the real client library, measures the bare-object
// baselines in the same run, prints a table with ratios, writes
// bench-results.json, and stops what it started.
import { gzipSync } from "node:zlib";
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { build } from "esbuild";
import { Client, Server } from "sharevars";
import { startWorker, SERVER_TOKEN } from "../test/helpers/worker.ts";
import { workerdPeakMiB } from "../scripts/memory.ts";

const QUICK = process.argv.includes("--quick");
const ROOT = resolve(import.meta.dirname, "..");
const N = {
  roundTrips: QUICK ? 200 : 1000,
  globalQueueItems: QUICK ? 2000 : 10_000,
  localQueueItems: QUICK ? 1000 : 5000,
  replicas: QUICK ? [100] : [100, 500],
  connects: QUICK ? 30 : 100,
  warmup: 30,
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (samples: number[], p: number) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};

// --- the bare baseline, over raw WebSockets ---

class Bare {
  static async open(url: string, name: string): Promise<Bare> {
    const ws = new WebSocket(`${url.replace("http", "ws")}/bench/bare/${name}/ws`);
    ws.binaryType = "arraybuffer";
    await new Promise((ok, fail) => ((ws.onopen = ok), (ws.onerror = fail)));
    return new Bare(ws);
  }
  #waiters: (() => void)[] = [];
  received = 0;
  readonly ws: WebSocket;
  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.onmessage = () => {
      this.received++;
      this.#waiters.shift()?.();
    };
  }
  next(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
  async roundTrip(mode: number): Promise<number> {
    const start = performance.now();
    const reply = this.next();
    this.ws.send(Uint8Array.of(mode, 1, 2, 3, 4, 5, 6, 7));
    await reply;
    return performance.now() - start;
  }
  /** Sends `count` messages at once; resolves with ops/s when every reply is in. */
  async pipelined(mode: number, count: number): Promise<number> {
    const start = performance.now();
    const target = this.received + count;
    for (let i = 0; i < count; i++) this.ws.send(Uint8Array.of(mode, i & 255, 2, 3, 4, 5, 6, 7));
    while (this.received < target) await sleep(1);
    return count / ((performance.now() - start) / 1000);
  }
  close() {
    this.ws.close();
  }
}

async function bareRoundTrips(url: string, mode: number, count: number): Promise<number[]> {
  const bare = await Bare.open(url, `rtt-${mode}-${Date.now()}`);
  for (let i = 0; i < N.warmup; i++) await bare.roundTrip(mode);
  const samples = [];
  for (let i = 0; i < count; i++) samples.push(await bare.roundTrip(mode));
  bare.close();
  return samples;
}

async function bareBroadcast(url: string, sockets: number): Promise<number> {
  const name = `broadcast-${sockets}-${Date.now()}`;
  const all = await Promise.all(Array.from({ length: sockets }, () => Bare.open(url, name)));
  const times = [];
  for (let round = 0; round < 5; round++) {
    const start = performance.now();
    const arrived = all.map((b) => b.next());
    all[0].ws.send(Uint8Array.of(2, round));
    await Promise.all(arrived);
    times.push(performance.now() - start);
  }
  all.forEach((b) => b.close());
  return pct(times, 50);
}

async function bareOpen(url: string, count: number): Promise<number[]> {
  const samples = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    const bare = await Bare.open(url, `open-${i}`);
    samples.push(performance.now() - start);
    bare.close();
  }
  return samples;
}

// --- sharevars scenarios ---

async function pipeRoundTrips(url: string, count: number): Promise<number[]> {
  const space = `bench-pipe-${Date.now()}`;
  const server = await Server.connect(url, { space, token: SERVER_TOKEN });
  const client = await Client.connect(url, { space, id: "c" });
  const peer = server.clients.get("c");
  let running = true;
  const echo = (async () => {
    while (running) await peer.send(await peer.recv());
  })();
  const samples = [];
  for (let i = 0; i < N.warmup + count; i++) {
    const start = performance.now();
    await client.send(i);
    await client.recv();
    if (i >= N.warmup) samples.push(performance.now() - start);
  }
  running = false;
  await client.send("stop");
  await echo;
  await client.close();
  await server.close();
  return samples;
}

async function globalQueue(url: string, items: number): Promise<number> {
  const space = `bench-gq-${Date.now()}`;
  const server = await Server.connect(url, { space, token: SERVER_TOKEN });
  const consumers = await Promise.all([0, 1, 2, 3].map((i) => Client.connect(url, { space, id: `consumer${i}` })));
  let taken = 0;
  const start = performance.now();
  const consuming = consumers.map(async (c) => {
    while (taken < items) {
      try {
        await c.globals.queues["bench"].get({ timeout: 500 });
        taken++;
      } catch {
        // timed out: check whether all items are taken
      }
    }
  });
  const puts = [];
  for (let i = 0; i < items; i++) puts.push(server.queues["bench"].put(i));
  await Promise.all(puts);
  await Promise.all(consuming);
  const rate = items / ((performance.now() - start) / 1000);
  await Promise.all(consumers.map((c) => c.close()));
  await server.close();
  return rate;
}

async function localQueue(url: string, items: number): Promise<number> {
  const client = await Client.connect(url, { space: `bench-lq-${Date.now()}`, id: "c" });
  const start = performance.now();
  const puts = [];
  for (let i = 0; i < items; i++) puts.push(client.put(i));
  const gets = [];
  for (let i = 0; i < items; i++) gets.push(client.get());
  await Promise.all([...puts, ...gets]);
  const rate = items / ((performance.now() - start) / 1000);
  await client.close();
  return rate;
}

async function dictVisibleElsewhere(url: string, count: number): Promise<number[]> {
  const space = `bench-dict-${Date.now()}`;
  const writer = await Client.connect(url, { space, id: "writer" });
  const reader = await Client.connect(url, { space, id: "reader" });
  const samples = [];
  for (let i = 0; i < N.warmup + count; i++) {
    const seen = new Promise<void>((resolve) => {
      const off = reader.globals.on("change", ({ key }) => key === "k" && (off(), resolve()));
    });
    const start = performance.now();
    writer.globals["k"] = i;
    await seen;
    if (i >= N.warmup) samples.push(performance.now() - start);
  }
  await writer.close();
  await reader.close();
  return samples;
}

async function connectMany(url: string, space: string, count: number): Promise<Client[]> {
  const clients: Client[] = [];
  for (let i = 0; i < count; i += 50) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, j) => Client.connect(url, { space, id: `r${i + j}`, connectTimeout: 60_000 })))));
  }
  return clients;
}

async function fanOut(url: string, replicas: Client[], server: Server): Promise<number> {
  const times = [];
  for (let round = 0; round < 5; round++) {
    const seen = replicas.map((c) => new Promise<void>((resolve) => {
      const off = c.globals.on("change", ({ key }) => key === "fan" && (off(), resolve()));
    }));
    const start = performance.now();
    server["fan"] = round;
    await Promise.all(seen);
    times.push(performance.now() - start);
  }
  return pct(times, 50);
}

async function connects(url: string, count: number): Promise<number[]> {
  const space = `bench-connect-${Date.now()}`;
  const samples = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    const client = await Client.connect(url, { space, id: `c${i}` });
    samples.push(performance.now() - start);
    await client.close({ flushTimeout: 0 });
  }
  return samples;
}

async function bundleBytes(): Promise<{ minified: number; gzipped: number }> {
  const result = await build({
    stdin: { contents: 'export { Client } from "sharevars";', resolveDir: ROOT },
    bundle: true, minify: true, format: "esm", platform: "browser", write: false, logLevel: "silent",
  });
  const code = result.outputFiles[0].contents;
  return { minified: code.byteLength, gzipped: gzipSync(code, { level: 9 }).byteLength };
}

// --- run ---

interface Row { scenario: string; figure: string; value: number; unit: string; baseline?: number; ratio?: number; target?: string }

async function main() {
  const started = Date.now();
  const worker = await startWorker({ config: resolve(ROOT, "bench/wrangler.toml") });
  const url = worker.url;
  const rows: Row[] = [];
  const add = (row: Row) => {
    if (row.baseline !== undefined) row.ratio = row.value / row.baseline;
    rows.push(row);
    const ratio = row.ratio === undefined ? "" : ` = ${row.ratio.toFixed(2)}× baseline ${row.baseline!.toFixed(2)}`;
    console.log(`  ${row.scenario} — ${row.figure}: ${row.value.toFixed(2)} ${row.unit}${ratio}`);
  };
  try {
    console.log(`bench${QUICK ? " (quick)" : ""} against ${url}`);
    const echo = await bareRoundTrips(url, 0, N.roundTrips);
    const sqlRtt = await bareRoundTrips(url, 1, N.roundTrips);
    const sqlBare = await Bare.open(url, `pipelined-${Date.now()}`);
    const sqlOps = await sqlBare.pipelined(1, N.globalQueueItems);
    sqlBare.close();
    add({ scenario: "baseline", figure: "bare echo round trip p50", value: pct(echo, 50), unit: "ms" });
    add({ scenario: "baseline", figure: "bare SQL round trip p50", value: pct(sqlRtt, 50), unit: "ms" });
    add({ scenario: "baseline", figure: "bare SQL pipelined", value: sqlOps, unit: "ops/s" });

    const pipe = await pipeRoundTrips(url, N.roundTrips);
    add({ scenario: "pipe round trip", figure: "p50", value: pct(pipe, 50), unit: "ms", baseline: pct(sqlRtt, 50), target: "≤ 2.5×" });
    add({ scenario: "pipe round trip", figure: "p99", value: pct(pipe, 99), unit: "ms", baseline: pct(sqlRtt, 99) });

    add({ scenario: `global queue, 1 producer, 4 consumers, ${N.globalQueueItems} items`, figure: "throughput", value: await globalQueue(url, N.globalQueueItems), unit: "items/s", baseline: sqlOps, target: "≥ 0.5×" });
    add({ scenario: `local queue put/get pipelined, ${N.localQueueItems} items`, figure: "throughput", value: await localQueue(url, N.localQueueItems), unit: "items/s", baseline: sqlOps, target: "≥ 0.6×" });

    const dict = await dictVisibleElsewhere(url, N.roundTrips);
    add({ scenario: "dict write visible on another replica", figure: "p50", value: pct(dict, 50), unit: "ms", baseline: pct(echo, 50), target: "≤ 1.5×" });
    add({ scenario: "dict write visible on another replica", figure: "p99", value: pct(dict, 99), unit: "ms", baseline: pct(echo, 99) });

    const space = `bench-fan-${Date.now()}`;
    const server = await Server.connect(url, { space, token: SERVER_TOKEN });
    const replicas: Client[] = [];
    let idleMemory = 0;
    for (const count of N.replicas) {
      replicas.push(...(await connectMany(url, space, count - replicas.length)));
      const baseline = await bareBroadcast(url, count);
      add({ scenario: `global dict write visible on ${count} replicas`, figure: "time to the last", value: await fanOut(url, replicas, server), unit: "ms", baseline, target: "≤ 1.3×" });
      if (count === 500 || QUICK) idleMemory = workerdPeakMiB(worker.pid);
    }
    await Promise.all(replicas.map((c) => c.close({ flushTimeout: 0 })));
    await server.close();

    const connectTimes = await connects(url, N.connects);
    const opens = await bareOpen(url, N.connects);
    add({ scenario: "Client.connect until ready (both snapshots)", figure: "p50", value: pct(connectTimes, 50), unit: "ms", baseline: pct(opens, 50), target: "≤ 3×" });

    const bundle = await bundleBytes();
    add({ scenario: 'browser bundle of import { Client } from "sharevars"', figure: "min+gzip", value: bundle.gzipped / 1024, unit: "KiB", target: "≤ 20 KB" });
    add({ scenario: `worker memory with ${N.replicas.at(-1)} clients connected`, figure: "workerd peak RSS", value: idleMemory, unit: "MiB" });
  } finally {
    await worker.stop();
  }
  const results = { date: new Date().toISOString(), quick: QUICK, node: process.version, seconds: (Date.now() - started) / 1000, rows };
  writeFileSync(resolve(ROOT, "bench-results.json"), JSON.stringify(results, null, 2) + "\n");
  console.log("\n| scenario | figure | value | baseline | ratio | target |\n|---|---|---|---|---|---|");
  for (const r of rows) {
    console.log(`| ${r.scenario} | ${r.figure} | ${r.value.toFixed(2)} ${r.unit} | ${r.baseline?.toFixed(2) ?? "—"} | ${r.ratio ? r.ratio.toFixed(2) + "×" : "—"} | ${r.target ?? "—"} |`);
  }
  console.log(`\nwrote bench-results.json in ${results.seconds.toFixed(0)} s`);
  process.exit(0);
}

await main();
