// A worker of the distributed integral: takes tasks from the global queue
// "task", puts results on "result", until the server sets globals["done"].
//   node examples/integral/client.ts <id>
import { Client } from "sharevars";
import { integrate, type Task } from "./integrate.ts";

const url = process.env.SHAREVARS_URL ?? "http://127.0.0.1:8787";
const space = process.env.SHAREVARS_SPACE ?? "integral";
const id = process.argv[2] ?? `worker-${process.pid}`;

const client = await Client.connect(url, { space, id });
let done = 0;
while (!client.globals["done"]) {
  let task: Task;
  try {
    task = await client.globals.queues["task"].get({ timeout: 500 });
  } catch (error) {
    if ((error as Error).name === "TimeoutError") continue; // check "done" again
    throw error;
  }
  await client.globals.queues["result"].put({ id: task.id, value: integrate(task.a, task.b), by: id });
  done++;
}
console.log(`${id}: computed ${done} tasks`);
await client.close();
