// `sharevars/worker`: an existing worker mounts sharevars under a path prefix
// next to its own routes, exporting the two Durable Object classes — built
// from the package as a user's project would, and run with wrangler dev.
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { Client, Server } from "sharevars";
import { startWorker, SERVER_TOKEN, type LocalWorker } from "../helpers/worker.js";

const ROOT = resolve(import.meta.dirname, "../..");
let worker: LocalWorker;

beforeAll(async () => {
  const project = mkdtempSync(join(tmpdir(), "sharevars-mount-"));
  mkdirSync(join(project, "node_modules"));
  symlinkSync(ROOT, join(project, "node_modules", "sharevars"), "dir");
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "my-app", type: "module" }));
  // The snippet the README gives, word for word in spirit: the user's own routes, then sharevars.
  writeFileSync(join(project, "index.js"), `
    import { handleRequest } from "sharevars/worker";
    export { SpaceObject, ClientObject } from "sharevars/worker";
    export default {
      async fetch(request, env) {
        if (new URL(request.url).pathname === "/hello") return new Response("my app says hello");
        return (await handleRequest(request, env, { prefix: "/sharevars" })) ?? new Response("my app: not found", { status: 404 });
      },
    };
  `);
  writeFileSync(join(project, "wrangler.toml"), `
name = "my-app"
main = "index.js"
compatibility_date = "2026-11-01"

[[durable_objects.bindings]]
name = "SPACES"
class_name = "SpaceObject"

[[durable_objects.bindings]]
name = "CLIENTS"
class_name = "ClientObject"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["SpaceObject", "ClientObject"]
`);
  worker = await startWorker({ config: join(project, "wrangler.toml"), ready: "/hello" });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
});

test("an existing worker mounts sharevars under /sharevars and keeps its own routes", async () => {
  expect(await (await fetch(`${worker.url}/hello`)).text()).toBe("my app says hello");
  expect((await fetch(`${worker.url}/v1/spaces/x/globals`)).status).toBe(404); // only under the prefix

  const base = `${worker.url}/sharevars`;
  const client = await Client.connect(base, { space: "mounted", id: "alice" });
  const server = await Server.connect(base, { space: "mounted", token: SERVER_TOKEN });
  try {
    client["var1"] = 256;
    await client.sync();
    const peer = server.clients.get("alice");
    await peer.ready;
    expect(peer["var1"]).toBe(256);
    await peer.send("My name is Bruce.");
    expect(await client.recv({ timeout: 10_000 })).toBe("My name is Bruce.");

    const http = await fetch(`${base}/v1/spaces/mounted/clients/alice/dict/var1`, { headers: { authorization: `Bearer ${SERVER_TOKEN}` } });
    expect(await http.json()).toBe(256);
  } finally {
    await client.close();
    await server.close();
  }
});
