// The distributed integral: the server cuts [0, 1] into tasks, puts them on
// the global queue "task", and collects exactly one result per task from
// "result". Start clients with examples/integral/client.ts (or run main.ts).
import { Server } from "sharevars";
import type { Result } from "./integrate.ts";

export async function computePi(server: Server, tasks = 400): Promise<{ pi: number; by: Map<string, number> }> {
  server["done"] = false;
  for (let id = 0; id < tasks; id++) {
    await server.queues["task"].put({ id, a: id / tasks, b: (id + 1) / tasks });
  }
  const seen = new Set<number>();
  const by = new Map<string, number>();
  let pi = 0;
  while (seen.size < tasks) {
    const result: Result = await server.queues["result"].get();
    if (seen.has(result.id)) throw new Error(`task ${result.id} came back twice`);
    seen.add(result.id);
    by.set(result.by, (by.get(result.by) ?? 0) + 1);
    pi += result.value;
  }
  server["done"] = true;
  await server.sync();
  return { pi, by };
}

if (import.meta.main) {
  const url = process.env.SHAREVARS_URL ?? "http://127.0.0.1:8787";
  const space = process.env.SHAREVARS_SPACE ?? "integral";
  const token = process.env.SHAREVARS_TOKEN ?? "dev-server-token";
  const server = await Server.connect(url, { space, token });
  const { pi, by } = await computePi(server, Number(process.argv[2] ?? 400));
  console.log(`pi ≈ ${pi.toFixed(12)} (error ${Math.abs(pi - Math.PI).toExponential(2)})`);
  for (const [id, n] of by) console.log(`  ${id}: ${n} tasks`);
  await server.close();
}
