// A bounded load test (not part of `npm test`): N concurrent clients on one
// space for D seconds against a local worker on 127.0.0.1, each in a closed
// loop of dict writes, global-queue puts and gets, and pipe round trips with
// the server. It ends by checking that every queue item was delivered exactly
// once and every replica converged, then prints throughput, p50/p99 latency
// and the worker's peak memory.
//   npm run loadtest -- [--clients 500] [--seconds 60]
import { Client, Server } from "sharevars";
import { startWorker, SERVER_TOKEN } from "../test/helpers/worker.ts";
import { workerdPeakMiB } from "./workerd-usage.ts";

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const CLIENTS = arg("clients", 500);
const SECONDS = arg("seconds", 60);

type Kind = "dict write" | "queue put" | "queue get" | "pipe round trip";
const latencies: Record<Kind, number[]> = { "dict write": [], "queue put": [], "queue get": [], "pipe round trip": [] };

const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN);

async function main() {
  const worker = await startWorker();
  started = worker;
  const space = `load-${Date.now()}`;
  console.log(`worker on ${worker.url}; ${CLIENTS} clients for ${SECONDS} s`);
  const server = await Server.connect(worker.url, { space, token: SERVER_TOKEN });

  // The server echoes every client's pipe.
  let stopping = false;
  const echoes: Promise<void>[] = [];
  const echo = async (id: string) => {
    const peer = server.clients.get(id);
    while (!stopping) {
      try {
        await peer.send(await peer.recv({ timeout: 1000 }));
      } catch (error) {
        if ((error as Error).name !== "TimeoutError") throw error;
      }
    }
  };

  const clients: Client[] = [];
  const connectStart = performance.now();
  for (let i = 0; i < CLIENTS; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, CLIENTS - i) }, (_, j) => Client.connect(worker.url, { space, id: `c${i + j}`, connectTimeout: 60_000 })),
    );
    clients.push(...batch);
  }
  // The server's peer handles connect in batches too (500 at once outrun their connect timeout on a busy machine).
  for (let i = 0; i < clients.length; i += 50) {
    await Promise.all(clients.slice(i, i + 50).map((client) => server.clients.get(client.id).ready));
  }
  for (const client of clients) echoes.push(echo(client.id));
  console.log(`${CLIENTS} clients connected in ${((performance.now() - connectStart) / 1000).toFixed(1)} s`);

  const put = new Set<string>();
  const got: string[] = [];
  const deadline = Date.now() + SECONDS * 1000;
  const timed = async (kind: Kind, work: () => Promise<unknown>) => {
    const start = performance.now();
    const result = await work();
    latencies[kind].push(performance.now() - start);
    return result;
  };

  const runStart = performance.now();
  await Promise.all(clients.map(async (client, index) => {
    let n = 0;
    while (Date.now() < deadline) {
      n++;
      switch (n % 4) {
        case 0:
          await timed("dict write", async () => {
            client.globals[`k${n % 50}`] = { by: index, n };
            client["n"] = n;
            await client.sync();
          });
          break;
        case 1: {
          const item = `${index}:${n}`;
          await timed("queue put", () => client.globals.queues["load"].put(item));
          put.add(item);
          break;
        }
        case 2:
          try {
            got.push(await timed("queue get", () => client.globals.queues["load"].get({ timeout: 2000 })) as string);
          } catch (error) {
            if ((error as Error).name !== "TimeoutError") throw error;
          }
          break;
        default: {
          const message = `${index}/${n}`;
          const reply = await timed("pipe round trip", async () => {
            await client.send(message);
            return client.recv({ timeout: 30_000 });
          });
          if (reply !== message) throw new Error(`pipe of ${client.id}: sent ${message}, got ${reply}`);
        }
      }
    }
  }));
  const elapsed = (performance.now() - runStart) / 1000;
  stopping = true;

  // Every item exactly once: drain what is left, then compare.
  for (;;) {
    try {
      got.push(await server.queues["load"].get({ timeout: 0 }));
    } catch {
      break;
    }
  }
  const counts = new Map<string, number>();
  for (const item of got) counts.set(item, (counts.get(item) ?? 0) + 1);
  const twice = [...counts].filter(([, c]) => c > 1).length;
  const missing = [...put].filter((item) => !counts.has(item)).length;
  const unknown = [...counts.keys()].filter((item) => !put.has(item)).length;

  // Every replica converged to the server's global dict.
  await Promise.all(clients.map((client) => client.sync()));
  await server.sync();
  const target = JSON.stringify(server.dict.toObject());
  const convergeStart = Date.now();
  let diverged = clients.length;
  while (Date.now() - convergeStart < 30_000) {
    diverged = clients.filter((client) => JSON.stringify(client.globals.dict.toObject()) !== target).length;
    if (diverged === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }

  const memory = workerdPeakMiB(worker.pid);
  const ops = Object.values(latencies).reduce((a, l) => a + l.length, 0);
  console.log(`\n${ops} operations in ${elapsed.toFixed(1)} s: ${(ops / elapsed).toFixed(0)} ops/s`);
  console.log("operation          count     ops/s    p50 ms    p99 ms");
  for (const [kind, list] of Object.entries(latencies)) {
    const sorted = [...list].sort((a, b) => a - b);
    console.log(`${kind.padEnd(16)} ${String(list.length).padStart(7)} ${(list.length / elapsed).toFixed(0).padStart(9)} ${percentile(sorted, 50).toFixed(1).padStart(9)} ${percentile(sorted, 99).toFixed(1).padStart(9)}`);
  }
  console.log(`\nqueue items: ${put.size} put, ${got.length} got, ${twice} twice, ${missing} missing, ${unknown} unknown`);
  console.log(`replicas diverged after sync: ${diverged} of ${clients.length}`);
  console.log(`workerd peak RSS: ${memory.toFixed(0)} MiB`);

  await Promise.all(clients.map((client) => client.close({ flushTimeout: 1000 })));
  await server.close({ flushTimeout: 1000 });
  await Promise.allSettled(echoes);
  await worker.stop();
  const ok = twice === 0 && missing === 0 && unknown === 0 && diverged === 0;
  console.log(ok ? "\nOK: every item exactly once, every replica converged" : "\nFAILED");
  process.exit(ok ? 0 : 1);
}

let started: Awaited<ReturnType<typeof startWorker>> | undefined;
try {
  await main();
} catch (error) {
  // A failed run still stops the worker it started.
  console.error(error);
  await started?.stop();
  process.exit(1);
}
