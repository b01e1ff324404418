// `npm run bench [-- --quick]`: starts the bench worker on 127.0.0.1, runs
// every scenario through the real client library, measures the bare-object
// baselines in the same run, prints a table with ratios, writes
// bench-results.json, and stops what it started.
import { gzipSync } from "node:zlib";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { build } from "esbuild";
import { Client, Server } from "sharevars";
import { startWorker, SERVER_TOKEN } from "../test/helpers/worker.ts";
import { resetWorkerdPeak, workerdCpuMs, workerdPeakMiB } from "../scripts/workerd-usage.ts";

const QUICK = process.argv.includes("--quick");
// wrangler dev records a trace span for every storage call and event into a
// local trace store (X_LOCAL_OBSERVABILITY, on by default): about 45 µs per
// storage call and 0.25 ms per event here, which no deployed object pays. The
// bench runs without it unless asked (see BENCHMARKS.md for both).
const LOCAL_TRACING = process.argv.includes("--local-tracing");
// Where the objects' SQLite files go (a fresh directory inside it): the
// system's temporary directory by default. Every durable write waits for its
// commit, whose fsync is the disk's: `--state-dir /dev/shm` shows what the
// figures are with a commit that costs almost nothing (see BENCHMARKS.md).
const STATE_DIR = process.argv.includes("--state-dir") ? process.argv[process.argv.indexOf("--state-dir") + 1] : tmpdir();
if (!STATE_DIR || STATE_DIR.startsWith("--")) throw new Error("--state-dir takes a directory");
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

/** CPU time used so far, in milliseconds: by the local worker's workerd processes, and by this process (the client library). */
let cpuNow = (): [workerd: number, node: number] => [0, 0];

/** What one kind of sample cost on average, in microseconds of CPU time. */
interface CpuPerSample { workerd: number; node: number }

/**
 * Runs baselines and a scenario (the last) in alternating blocks, so that
 * whatever else the machine does at the time weighs on all alike. Each
 * function returns one sample; all warm up first. Also returns what each
 * sample cost in CPU time, which the machine's load disturbs less than
 * latency: the runtime's and the library's own work, apart from waiting.
 */
async function interleavedAll(runs: (() => Promise<number>)[], count: number, block = 50, rotate = false): Promise<{ samples: number[][]; cpu: CpuPerSample[] }> {
  for (let i = 0; i < N.warmup; i++) for (const run of runs) await run();
  const samples = runs.map((): number[] => []);
  const used = runs.map(() => [0, 0]);
  let round = 0;
  while (samples[0].length < count) {
    const n = Math.min(block, count - samples[0].length);
    // `rotate`: each block starts one run later, so that no run always comes
    // right after the same other one (a run can leave work behind it: GC,
    // sockets still draining).
    const offset = rotate ? round++ % runs.length : 0;
    for (let j = 0; j < runs.length; j++) {
      const k = (j + offset) % runs.length;
      const run = runs[k];
      const [w0, n0] = cpuNow();
      for (let i = 0; i < n; i++) samples[k].push(await run());
      const [w1, n1] = cpuNow();
      used[k][0] += w1 - w0;
      used[k][1] += n1 - n0;
    }
  }
  return { samples, cpu: used.map(([w, n], k) => ({ workerd: (w * 1000) / samples[k].length, node: (n * 1000) / samples[k].length })) };
}

async function interleaved(baseline: () => Promise<number>, scenario: () => Promise<number>, count: number, block = 50): Promise<[number[], number[]]> {
  const { samples: [a, b] } = await interleavedAll([baseline, scenario], count, block);
  return [a, b];
}

/** A throughput baseline measured right before and right after the scenario: their mean. */
async function around(baseline: () => Promise<number>, scenario: () => Promise<number>): Promise<[number, number]> {
  const before = await baseline();
  const value = await scenario();
  const after = await baseline();
  return [(before + after) / 2, value];
}

// --- the bare baseline, over raw WebSockets ---

async function openRaw(url: string, name: string): Promise<WebSocket> {
  const ws = new WebSocket(`${url.replace("http", "ws")}/bench/bare/${name}/ws`);
  ws.binaryType = "arraybuffer";
  await new Promise((ok, fail) => ((ws.onopen = ok), (ws.onerror = fail)));
  return ws;
}

class Bare {
  static async open(url: string, name: string): Promise<Bare> {
    return new Bare(await openRaw(url, name));
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

/** What the bare object answers the sender of a relay or a pipe put (bench/bare.ts). */
const REPLIED = 200;
/** The global dict key the fan-out scenario writes (its bare baseline sends it too). */
const FAN_KEY = "fan";

/**
 * The floor of the pipe round trip: its messages and statements on the bare
 * object, nothing else. A sends one message (an ACK of what it got last, its
 * next receive and the put) and takes the reply; B, given the item, sends it
 * back the same way; A gets the item. (Until 2026-11-25T13:30Z each end also
 * sent its receive as a message of its own, as the library did then.)
 */
async function barePipe(url: string) {
  const name = `pipe-${Date.now()}`;
  const a = await openRaw(url, name);
  const b = await openRaw(url, name);
  // A counts what it got: the item may come back before A's reply is handled.
  let got = 0;
  let wanted = 0;
  let wake: (() => void) | undefined;
  a.onmessage = () => {
    if (++got >= wanted) wake?.();
  };
  b.onmessage = (event) => {
    if (new Uint8Array(event.data as ArrayBuffer)[0] !== REPLIED) b.send(Uint8Array.of(4, 1, 2, 3));
  };
  const step = (send: boolean) => new Promise<void>((resolve) => {
    wanted++;
    wake = resolve;
    if (send) a.send(Uint8Array.of(4, 1, 2, 3));
    if (got >= wanted) resolve();
  });
  return {
    async trip(): Promise<number> {
      const start = performance.now();
      await step(true); // put, until its reply
      await step(false); // until the item is back
      return performance.now() - start;
    },
    close: () => (a.close(), b.close()),
  };
}

/**
 * The floor of a dict write seen elsewhere: a durable write relayed by the
 * bare object to a second socket (mode 3). Mode 5 relays it before the write
 * instead: a reference for what giving up "stored before seen" would buy.
 */
async function bareRelay(url: string, mode: 3 | 5 = 3) {
  const name = `relay-${mode}-${Date.now()}`;
  const writer = await openRaw(url, name);
  const reader = await openRaw(url, name);
  let seen: (() => void) | undefined;
  reader.onmessage = () => seen?.();
  let n = 0;
  return {
    async trip(): Promise<number> {
      const start = performance.now();
      n++;
      await new Promise<void>((resolve) => {
        seen = resolve;
        writer.send(Uint8Array.of(mode, n & 255, (n >> 8) & 255, (n >> 16) & 255)); // a new value each time, as the dict scenario writes
      });
      return performance.now() - start;
    },
    close: () => (writer.close(), reader.close()),
  };
}

/**
 * `sockets` bare sockets on one object; `round(value)` times one broadcast until
 * the last socket has it. Like for like, the message carries what the fan-out
 * scenario's write carries: its key and its value (a random double, which does
 * not compress); `round()` with no value sends 2 bytes (the baseline until
 * 2026-11-25T20:30Z, kept as a reference row).
 */
async function bareBroadcaster(url: string, sockets: number) {
  const name = `broadcast-${sockets}-${Date.now()}`;
  const all: Bare[] = [];
  for (let i = 0; i < sockets; i += 50) {
    all.push(...(await Promise.all(Array.from({ length: Math.min(50, sockets - i) }, () => Bare.open(url, name)))));
  }
  let round = 0;
  return {
    /** `durable`: the fan-out's floor instead (mode 3: the message stored, then relayed to the other sockets; the sender gets its reply). */
    async round(value?: number, durable = false): Promise<number> {
      const message = value === undefined ? Uint8Array.of(2, round++ & 255) : broadcastMessage(value, durable ? 3 : 2);
      const start = performance.now();
      const arrived = all.map((b) => b.next());
      all[0].ws.send(message);
      await Promise.all(arrived);
      return performance.now() - start;
    },
    close: () => all.forEach((b) => b.close()),
  };
}

/** The mode's byte (broadcast, or a durable relay), then the fan-out scenario's key and its value's 8 bytes. */
function broadcastMessage(value: number, mode: 2 | 3): Uint8Array {
  const message = new Uint8Array(1 + FAN_KEY.length + 8);
  message[0] = mode;
  message.set(new TextEncoder().encode(FAN_KEY), 1);
  new DataView(message.buffer).setFloat64(1 + FAN_KEY.length, value);
  return message;
}

// --- sharevars scenarios ---

/** A client and its server peer echoing its pipe; `trip()` is one timed round trip. */
async function pipeEcho(url: string) {
  const space = `bench-pipe-${Date.now()}`;
  const server = await Server.connect(url, { space, token: SERVER_TOKEN });
  const client = await Client.connect(url, { space, id: "c" });
  const peer = server.clients.get("c");
  // It echoes until it has echoed "stop" (a flag could stop it before it
  // receives "stop", and the client would wait for its echo forever).
  const echo = (async () => {
    for (;;) {
      const value = await peer.recv();
      await peer.send(value);
      if (value === "stop") return;
    }
  })();
  let i = 0;
  return {
    async trip(): Promise<number> {
      const start = performance.now();
      await client.send(i++);
      await client.recv();
      return performance.now() - start;
    },
    async close() {
      await client.send("stop");
      await client.recv();
      await echo;
      await client.close();
      await server.close();
    },
  };
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

/** A writer and a reader client of one space; `trip()` times one global-dict write until the reader's replica has it. */
async function dictPair(url: string) {
  const space = `bench-dict-${Date.now()}`;
  const writer = await Client.connect(url, { space, id: "writer" });
  const reader = await Client.connect(url, { space, id: "reader" });
  let i = 0;
  return {
    async trip(): Promise<number> {
      const value = i++;
      const seen = new Promise<void>((resolve) => {
        const off = reader.globals.on("change", ({ key }) => key === "k" && (off(), resolve()));
      });
      const start = performance.now();
      writer.globals["k"] = value;
      await seen;
      return performance.now() - start;
    },
    async close() {
      await writer.close();
      await reader.close();
    },
  };
}

async function connectMany(url: string, space: string, count: number): Promise<Client[]> {
  const clients: Client[] = [];
  for (let i = 0; i < count; i += 50) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, j) => Client.connect(url, { space, id: `r${i + j}`, connectTimeout: 60_000 })))));
  }
  return clients;
}

async function fanOutRound(replicas: Client[], server: Server, round: number): Promise<number> {
  const seen = replicas.map((c) => new Promise<void>((resolve) => {
    const off = c.globals.on("change", ({ key }) => key === FAN_KEY && (off(), resolve()));
  }));
  const start = performance.now();
  server[FAN_KEY] = round;
  await Promise.all(seen);
  return performance.now() - start;
}

async function connectOnce(url: string, space: string, id: string): Promise<number> {
  const start = performance.now();
  const client = await Client.connect(url, { space, id });
  const time = performance.now() - start;
  await client.close({ flushTimeout: 0 });
  return time;
}

async function bareOpenOnce(url: string, name: string): Promise<number> {
  const start = performance.now();
  const bare = await Bare.open(url, name);
  const time = performance.now() - start;
  bare.close();
  return time;
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

interface Row { scenario: string; figure: string; value: number; unit: string; baseline?: number; ratio?: number; target?: string; met?: boolean }

/** Whether a row meets its target: "≤ 2.5×"/"≥ 0.5×" on the ratio, "≤ 20 KB" (20,000 bytes) on the value. */
function meets(row: Row): boolean | undefined {
  const m = /^([≤≥]) ([\d.]+) ?(×|KB)$/.exec(row.target ?? "");
  if (!m) return undefined;
  const x = m[3] === "KB" ? row.value : row.ratio!;
  const limit = m[3] === "KB" ? Number(m[2]) * 1000 : Number(m[2]);
  return m[1] === "≤" ? x <= limit : x >= limit;
}

/** The type of the file system that holds `dir` ("ext4", "tmpfs", ...), from /proc/mounts. */
function fileSystem(dir: string): string {
  const path = realpathSync(dir);
  let best = { at: "", type: "unknown" };
  for (const line of readFileSync("/proc/mounts", "utf8").split("\n")) {
    const [, at, type] = line.split(" ");
    if (at && (path === at || path.startsWith(at === "/" ? "/" : at + "/")) && at.length > best.at.length) best = { at, type };
  }
  return best.type;
}

async function main() {
  const started = Date.now();
  const persistTo = mkdtempSync(join(STATE_DIR, "sharevars-bench-"));
  const stateFileSystem = fileSystem(persistTo);
  const worker = await startWorker({ config: resolve(ROOT, "bench/wrangler.toml"), persistTo, env: LOCAL_TRACING ? {} : { X_LOCAL_OBSERVABILITY: "false" } });
  const url = worker.url;
  cpuNow = () => {
    const self = process.cpuUsage();
    return [workerdCpuMs(worker.pid), (self.user + self.system) / 1000];
  };
  const rows: Row[] = [];
  const add = (row: Row) => {
    if (row.baseline !== undefined) row.ratio = row.value / row.baseline;
    row.met = meets(row);
    rows.push(row);
    const ratio = row.ratio === undefined ? "" : ` = ${row.ratio.toFixed(2)}× baseline ${row.baseline!.toFixed(2)}`;
    console.log(`  ${row.scenario} — ${row.figure}: ${row.value.toFixed(2)} ${row.unit}${ratio}`);
  };
  try {
    console.log(`bench${QUICK ? " (quick)" : ""}${LOCAL_TRACING ? " with wrangler's local tracing" : ""} against ${url}, state in ${persistTo} (${stateFileSystem})`);
    // Baselines run next to the scenario they are a baseline for (interleaved
    // blocks, or right before and after): the machine is shared.
    const echoBare = await Bare.open(url, `echo-${Date.now()}`);
    const sqlBare = await Bare.open(url, `sql-${Date.now()}`);
    const sqlPipelined = () => sqlBare.pipelined(1, N.globalQueueItems);

    /**
     * A latency scenario, its baseline and its floor (the same messages and
     * statements on the bare object) in interleaved blocks; adds their rows.
     */
    const withFloor = async (
      base: { figure: string; trip: () => Promise<number> },
      floor: { scenario: string; trip: () => Promise<number>; close: () => void },
      scenario: { name: string; over: string; target: string; trip: () => Promise<number>; close: () => Promise<void> },
      reference?: { scenario: string; trip: () => Promise<number>; close: () => void },
    ) => {
      const runs = [base.trip, floor.trip, scenario.trip, ...(reference ? [reference.trip] : [])];
      const { samples: [baseRtt, floorRtt, rtt, referenceRtt], cpu: [, floorCpu, cpu] } = await interleavedAll(runs, N.roundTrips);
      await scenario.close();
      floor.close();
      reference?.close();
      add({ scenario: "baseline", figure: base.figure, value: pct(baseRtt, 50), unit: "ms" });
      add({ scenario: scenario.name, figure: "p50", value: pct(rtt, 50), unit: "ms", baseline: pct(baseRtt, 50), target: scenario.target });
      add({ scenario: scenario.name, figure: "p99", value: pct(rtt, 99), unit: "ms", baseline: pct(baseRtt, 99) });
      add({ scenario: floor.scenario, figure: "p50", value: pct(floorRtt, 50), unit: "ms", baseline: pct(baseRtt, 50) });
      if (reference) add({ scenario: reference.scenario, figure: "p50", value: pct(referenceRtt, 50), unit: "ms", baseline: pct(baseRtt, 50) });
      add({ scenario: scenario.over, figure: "p50", value: pct(rtt, 50), unit: "ms", baseline: pct(floorRtt, 50) });
      add({ scenario: scenario.over, figure: "workerd CPU per operation", value: cpu.workerd, unit: "µs", baseline: floorCpu.workerd });
      add({ scenario: scenario.over, figure: "Node CPU per operation (client side)", value: cpu.node, unit: "µs", baseline: floorCpu.node });
    };

    const pipe = await pipeEcho(url);
    const pipeFloor = await barePipe(url);
    await withFloor(
      { figure: "bare SQL round trip p50", trip: () => sqlBare.roundTrip(1) },
      { scenario: "floor: the pipe round trip's messages and statements on the bare object", ...pipeFloor },
      { name: "pipe round trip", over: "pipe round trip over its floor", target: "≤ 2.5×", trip: () => pipe.trip(), close: () => pipe.close() },
    );

    const [gqBase, gq] = await around(sqlPipelined, () => globalQueue(url, N.globalQueueItems));
    add({ scenario: "baseline", figure: "bare SQL pipelined", value: gqBase, unit: "ops/s" });
    add({ scenario: `global queue, 1 producer, 4 consumers, ${N.globalQueueItems} items`, figure: "throughput", value: gq, unit: "items/s", baseline: gqBase, target: "≥ 0.5×" });
    const [lqBase, lq] = await around(sqlPipelined, () => localQueue(url, N.localQueueItems));
    add({ scenario: "baseline", figure: "bare SQL pipelined", value: lqBase, unit: "ops/s" });
    add({ scenario: `local queue put/get pipelined, ${N.localQueueItems} items`, figure: "throughput", value: lq, unit: "items/s", baseline: lqBase, target: "≥ 0.6×" });

    const dict = await dictPair(url);
    const dictFloor = await bareRelay(url);
    const relayFirst = await bareRelay(url, 5);
    await withFloor(
      { figure: "bare echo round trip p50", trip: () => echoBare.roundTrip(0) },
      { scenario: "floor: a durable write relayed by the bare object to another socket", ...dictFloor },
      { name: "dict write visible on another replica", over: "dict write visible elsewhere over its floor", target: "≤ 1.5×", trip: () => dict.trip(), close: () => dict.close() },
      { scenario: "reference: the bare object relays the write before storing it (not sharevars' semantics)", ...relayFirst },
    );
    echoBare.close();
    sqlBare.close();

    const space = `bench-fan-${Date.now()}`;
    const server = await Server.connect(url, { space, token: SERVER_TOKEN });
    const replicas: Client[] = [];
    let idleMemory = 0;
    for (const count of N.replicas) {
      replicas.push(...(await connectMany(url, space, count - replicas.length)));
      const bare = await bareBroadcaster(url, count);
      const rounds = QUICK ? 11 : 41; // 15 until 2026-11-25T11:10Z: too few (the 100-replica ratio moved by ±0.15 between runs)
      // (Each its own new random double: a write of the value already there would change nothing.)
      const { samples: [broadcast, fan, tiny] } = await interleavedAll([
        () => bare.round(Math.random()),
        () => fanOutRound(replicas, server, Math.random()),
        () => bare.round(),
      ], rounds, 1, true);
      // The floor in a pass of its own, beside the broadcast again: as a fourth
      // run of the pass above it moved the broadcast's reading (4.8 against
      // 5.6-6.5 ms for 100 sockets), and with it the scenario's ratio, which
      // stays measured as in earlier runs.
      const { samples: [broadcastAgain, floor] } = await interleavedAll([
        () => bare.round(Math.random()),
        () => bare.round(Math.random(), true),
      ], rounds, 1, true);
      bare.close();
      add({ scenario: "baseline", figure: `bare broadcast of the write's key and value to ${count} sockets (p50 of rounds)`, value: pct(broadcast, 50), unit: "ms" });
      add({ scenario: `global dict write visible on ${count} replicas`, figure: "time to the last (p50 of rounds)", value: pct(fan, 50), unit: "ms", baseline: pct(broadcast, 50), target: "≤ 1.3×" });
      add({ scenario: `reference: the same against a bare broadcast of 2 bytes (the baseline until 2026-11-25T20:30Z)`, figure: "time to the last (p50 of rounds)", value: pct(fan, 50), unit: "ms", baseline: pct(tiny, 50) });
      add({ scenario: `floor: a durable write relayed by the bare object to ${count - 1} sockets, with its reply to the writer (a pass of its own)`, figure: "time to the last (p50 of rounds)", value: pct(floor, 50), unit: "ms", baseline: pct(broadcastAgain, 50) });
      // (Its ratio over the floor is the scenario's ratio over the floor's, each to the broadcast of its own pass.)
      add({ scenario: `global dict write visible on ${count} replicas over its floor`, figure: "ratio to the broadcast over the floor's", value: pct(fan, 50) / pct(broadcast, 50), unit: "×", baseline: pct(floor, 50) / pct(broadcastAgain, 50) });
      if (count === N.replicas.at(-1)) {
        // The peak while only these clients stay connected and idle: the
        // earlier scenarios' peak is reset first (Linux clear_refs).
        await sleep(1000);
        resetWorkerdPeak(worker.pid);
        await sleep(3000);
        idleMemory = workerdPeakMiB(worker.pid);
      }
    }
    await Promise.all(replicas.map((c) => c.close({ flushTimeout: 0 })));
    await server.close();

    // Like for like: a connect with a new client id creates that client's
    // object, so its baseline opens a new bare object each time; a connect with
    // a known id reopens objects that exist, against reopening bare objects.
    // (Before 2026-11-25T09:30Z the one connect row compared new client
    // objects with a baseline that reopened one bare object 9 times in 10.)
    const connectSpace = `bench-connect-${Date.now()}`;
    let m = 0;
    let k = 0;
    const [freshOpens, freshConnects] = await interleaved(() => bareOpenOnce(url, `fresh-${started}-${m++}`), () => connectOnce(url, connectSpace, `c${k++}`), N.connects, 10);
    add({ scenario: "baseline", figure: "bare WebSocket open, new object p50", value: pct(freshOpens, 50), unit: "ms" });
    add({ scenario: "Client.connect until ready (both snapshots), new client id", figure: "p50", value: pct(freshConnects, 50), unit: "ms", baseline: pct(freshOpens, 50), target: "≤ 3×" });
    m = 0;
    k = 0;
    const [reopens, reconnects] = await interleaved(() => bareOpenOnce(url, `fresh-${started}-${m++}`), () => connectOnce(url, connectSpace, `c${k++}`), N.connects, 10);
    add({ scenario: "baseline", figure: "bare WebSocket open, existing object p50", value: pct(reopens, 50), unit: "ms" });
    add({ scenario: "Client.connect until ready (both snapshots), known client id", figure: "p50", value: pct(reconnects, 50), unit: "ms", baseline: pct(reopens, 50), target: "≤ 3×" });

    const bundle = await bundleBytes();
    add({ scenario: 'browser bundle of import { Client } from "sharevars"', figure: "min+gzip", value: bundle.gzipped, unit: "bytes", target: "≤ 20 KB" });
    add({ scenario: `worker memory with ${N.replicas.at(-1)} idle clients connected`, figure: "workerd peak RSS", value: idleMemory, unit: "MiB" });
  } finally {
    await worker.stop();
    rmSync(persistTo, { recursive: true, force: true });
  }
  const machine = { nproc: availableParallelism(), cpu: cpus()[0]?.model ?? "unknown", load: loadavg().map((l) => Number(l.toFixed(2))), stateFileSystem };
  const results = { date: new Date().toISOString(), quick: QUICK, localTracing: LOCAL_TRACING, node: process.version, machine, seconds: (Date.now() - started) / 1000, rows };
  writeFileSync(resolve(ROOT, "bench-results.json"), JSON.stringify(results, null, 2) + "\n");
  console.log("\n| scenario | figure | value | baseline | ratio | target | met |\n|---|---|---|---|---|---|---|");
  for (const r of rows) {
    console.log(`| ${r.scenario} | ${r.figure} | ${r.value.toFixed(2)} ${r.unit} | ${r.baseline?.toFixed(2) ?? "—"} | ${r.ratio ? r.ratio.toFixed(2) + "×" : "—"} | ${r.target ?? "—"} | ${r.met === undefined ? "—" : r.met ? "yes" : "no"} |`);
  }
  console.log(`\nwrote bench-results.json in ${results.seconds.toFixed(0)} s`);
  process.exit(0);
}

await main();
