// The built package works from another project: `import { Client, Server }
// from "sharevars"` resolves through package.json "exports" to dist/.
import { execFileSync } from "node:child_process";
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

test("npm pack holds the library (ESM, types), the worker entry and the README, and no sources or tests", () => {
  // The global setup built dist/; --ignore-scripts keeps pack from building again.
  const [packed] = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: ROOT, encoding: "utf8" })) as [{ files: { path: string }[] }];
  const files = packed.files.map((f) => f.path);
  for (const needed of ["README.md", "package.json", "dist/index.js", "dist/index.d.ts", "dist/worker/worker/index.js", "dist/worker/worker/index.d.ts"]) {
    expect(files).toContain(needed);
  }
  expect(files.filter((f) => !f.startsWith("dist/") && !["README.md", "package.json", "LICENSE"].includes(f))).toEqual([]);
});
