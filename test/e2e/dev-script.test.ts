// The README's quick start: `npm run dev` serves the worker locally with the
// local-only server token, and passes extra arguments to wrangler dev.
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, expect, test } from "vitest";
import { Client, ErrorCode, Server } from "sharevars";
import { freePort } from "../helpers/worker.js";
import { until } from "../helpers/e2e.js";

const ROOT = resolve(import.meta.dirname, "../..");
const started: number[] = [];
afterAll(() => {
  for (const pid of started) {
    try {
      process.kill(-pid, "SIGTERM");
    } catch {}
  }
});

test("npm run dev -- --port N --var CLIENT_AUTH:token serves on that port, with dev-server-token, in token mode", async () => {
  const port = await freePort();
  const state = mkdtempSync(join(tmpdir(), "sharevars-dev-"));
  const args = ["run", "dev", "--", "--port", String(port), "--inspector-port", String(await freePort()), "--persist-to", state, "--var", "CLIENT_AUTH:token"];
  const child = spawn("npm", args, { cwd: ROOT, detached: true, stdio: "ignore", env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1" } });
  started.push(child.pid!);
  const url = `http://127.0.0.1:${port}`;
  await until(async () => (await fetch(url + "/")).ok, { timeout: 90_000, interval: 250, what: "npm run dev to answer" });

  const server = await Server.connect(url, { space: "dev", token: "dev-server-token" });
  try {
    await expect(Client.connect(url, { space: "dev", id: "alice" })).rejects.toMatchObject({ name: "AuthError", code: ErrorCode.UNAUTHORIZED });
    const client = await Client.connect(url, { space: "dev", token: await server.issueClientToken("alice") });
    client["var1"] = 256;
    await client.sync();
    const peer = server.clients.get("alice");
    await peer.ready;
    expect(peer["var1"]).toBe(256);
    await client.close();
  } finally {
    await server.close();
  }
}, 120_000);
