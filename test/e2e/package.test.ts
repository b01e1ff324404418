// The built package works from another project: `import { Client, Server }
// from "sharevars"` resolves through package.json "exports" to dist/.
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { expect, test } from "vitest";
import { processes } from "../helpers/processes.js";
import { SERVER_TOKEN, uniqueSpace, workerUrl } from "../helpers/e2e.js";

const ROOT = resolve(import.meta.dirname, "../..");
const run = processes();

test("another project imports the built package and shares a variable", async () => {
  const project = mkdtempSync(join(tmpdir(), "sharevars-consumer-"));
  mkdirSync(join(project, "node_modules"));
  symlinkSync(ROOT, join(project, "node_modules", "sharevars"), "dir");
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", type: "module" }));
  writeFileSync(join(project, "main.js"), `
    import { Client, Server } from "sharevars";
    const { URL_, SPACE, TOKEN } = process.env;
    const client = await Client.connect(URL_, { space: SPACE, id: "alice" });
    const server = await Server.connect(URL_, { space: SPACE, token: TOKEN });
    client["var1"] = 256;
    await client.sync();
    const peer = server.clients.get("alice");
    await peer.ready;
    console.log("server reads", peer["var1"]);
    await client.close();
    await server.close();
  `);
  const consumer = run.node(["main.js"], { URL_: workerUrl(), SPACE: uniqueSpace("package"), TOKEN: SERVER_TOKEN }, project);
  expect(await consumer.exited, consumer.output()).toBe(0);
  expect(consumer.output()).toContain("server reads 256");
});
