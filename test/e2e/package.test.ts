// The built package works from another project: `import { Client, Server }
// from "sharevars"` resolves through package.json "exports" to dist/.
import { execFileSync, spawnSync } from "node:child_process";
import { createServer } from "node:net";
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

test("the built types: one variable holds the global dict's handle on either side, and takes change listeners", async () => {
  // `isServer ? server : client.globals` is a union of two handle types; a
  // union's on/off are callable only if at most one of them is generic.
  const project = mkdtempSync(join(tmpdir(), "sharevars-consumer-"));
  mkdirSync(join(project, "node_modules"));
  symlinkSync(ROOT, join(project, "node_modules", "sharevars"), "dir");
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", type: "module" }));
  writeFileSync(join(project, "tsconfig.json"), JSON.stringify({
    compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, skipLibCheck: false, types: ["node"], typeRoots: [join(ROOT, "node_modules/@types")] },
    files: ["main.ts"],
  }));
  writeFileSync(join(project, "main.ts"), `
    import { Client, Server, type ChangeEvent } from "sharevars";
    const { URL_, SPACE, TOKEN } = process.env as Record<string, string>;
    const client = await Client.connect(URL_, { space: SPACE, id: "alice" });
    const server = await Server.connect(URL_, { space: SPACE, token: TOKEN });
    const seen: string[] = [];
    for (const isServer of [true, false]) {
      const globals = isServer ? server : client.globals;
      const listener = (change: ChangeEvent) => seen.push(\`\${isServer ? "server" : "client"} \${change.key}\`);
      globals.on("change", (change) => listener(change));
      globals.on("change", listener);
      globals.off("change", listener);
    }
    server["k"] = 1;
    await server.sync();
    while (seen.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    console.log("seen", seen.sort().join(", "));
    await client.close();
    await server.close();
  `);
  const tsc = spawnSync(join(ROOT, "node_modules/.bin/tsc"), ["-p", "."], { cwd: project, encoding: "utf8" });
  expect(tsc.stdout + tsc.stderr).toBe("");
  expect(tsc.status).toBe(0);
  const consumer = run.node(["main.ts"], { URL_: workerUrl(), SPACE: uniqueSpace("package"), TOKEN: SERVER_TOKEN }, project);
  expect(await consumer.exited, consumer.output()).toBe(0);
  expect(consumer.output()).toContain("seen client k, server k");
});

test("close() leaves no timer behind: a process ends at once (a connect that timed out, a peer touched after server.close())", async () => {
  const silent = createServer(() => {}); // takes the TCP connection, never answers the upgrade
  await new Promise<void>((done) => silent.listen(0, "127.0.0.1", done));
  try {
    const script = `
      import { Client, Server } from ${JSON.stringify(join(ROOT, "dist/index.js"))};
      const { MODE, URL_, SPACE, TOKEN } = process.env;
      const started = Date.now();
      process.on("exit", () => console.log("ended after", Date.now() - started, "ms"));
      if (MODE === "silent") await Client.connect(URL_, { space: SPACE, id: "a", connectTimeout: 300 }).catch((e) => console.log(e.name));
      else {
        const server = await Server.connect(URL_, { space: SPACE, token: TOKEN });
        await server.close();
        await server.clients.get("x").send(1).catch((e) => console.log(e.name));
      }
    `;
    const silentUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
    for (const [MODE, URL_] of [["silent", silentUrl], ["peer", workerUrl()]]) {
      const script_ = run.node(["--input-type=module", "-e", script], { MODE, URL_, SPACE: uniqueSpace("package"), TOKEN: SERVER_TOKEN });
      expect(await script_.exited, script_.output()).toBe(0);
      expect(script_.output()).toContain("ClosedError");
      // (the socket's own connect timeout, 5 s, used to keep it running)
      expect(Number(/ended after (\d+) ms/.exec(script_.output())?.[1]), `${MODE}: ${script_.output()}`).toBeLessThan(2000);
    }
  } finally {
    silent.close();
  }
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
