// The distributed integral: the server puts hundreds of tasks on the global
// queue "task", four clients take them and put results on "result", and the
// server collects exactly one result per task.
import { describe, expect, test } from "vitest";
import { computePi } from "../../examples/integral/server.ts";
import { integrate, type Task } from "../../examples/integral/integrate.ts";
import { handles } from "../helpers/handles.js";
import { uniqueSpace } from "../helpers/e2e.js";

const open = handles();

describe("distributed integral", () => {
  test("four clients share 400 tasks; one result per task; the sum is pi", async () => {
    const space = uniqueSpace("integral");
    const server = await open.server(space);
    const workers = await Promise.all(["alpha", "beta", "gamma", "delta"].map((id) => open.client(space, id)));

    const work = workers.map(async (client) => {
      let count = 0;
      while (!client.globals["done"]) {
        let task: Task;
        try {
          task = await client.globals.queues["task"].get({ timeout: 300 });
        } catch (error) {
          if ((error as Error).name === "TimeoutError") continue;
          throw error;
        }
        await client.globals.queues["result"].put({ id: task.id, value: integrate(task.a, task.b, 2000), by: client.id });
        count++;
      }
      return count;
    });

    const { pi, by } = await computePi(server, 400);
    const counts = await Promise.all(work);

    expect(Math.abs(pi - Math.PI)).toBeLessThan(1e-9);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(400); // no task computed twice
    expect([...by.values()].reduce((a, b) => a + b, 0)).toBe(400);
    expect(by.size).toBeGreaterThan(1); // the work was shared
    expect(await server.queues["task"].size()).toBe(0);
    expect(await server.queues["result"].size()).toBe(0);
  });
});
