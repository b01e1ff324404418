// Starts the real worker with `wrangler dev` (workerd, Miniflare) on
// 127.0.0.1 for end-to-end tests, and stops exactly the processes it started.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const SERVER_TOKEN = "dev-server-token";
const ROOT = resolve(import.meta.dirname, "../..");

export interface LocalWorker {
  url: string;
  port: number;
  /** wrangler's devtools port (the worker's V8 inspector). */
  inspectorPort: number;
  /** The wrangler process, leader of the process group that includes workerd. */
  pid: number;
  persistTo: string;
  /** Everything wrangler printed so far. */
  output(): string;
  /** SIGTERM by default; SIGKILL for a hard crash. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

export interface StartOptions {
  /** State directory; a fresh temporary one by default. Reuse it to restart on the same state. */
  persistTo?: string;
  port?: number;
  vars?: Record<string, string>;
  /** Pass no variables at all, as a deployed worker without secrets would run. */
  asDeployed?: boolean;
  /** Another wrangler config (the benchmark's, a project that mounts sharevars). */
  config?: string;
  /** The path that answers 200 once the worker is up ("/" by default). */
  ready?: string;
  /** Extra environment variables for wrangler itself. */
  env?: Record<string, string>;
}

/**
 * Starts the worker. A restart on the port a killed worker just left may find
 * it not yet free ("Address already in use"): that start is tried again.
 */
export async function startWorker(options: StartOptions = {}): Promise<LocalWorker> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (error) {
      if (attempt >= 10 || !/address already in use|EADDRINUSE/i.test(String(error))) throw error;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function startOnce(options: StartOptions): Promise<LocalWorker> {
  const port = options.port ?? (await freePort());
  const inspectorPort = await freePort();
  const persistTo = options.persistTo ?? mkdtempSync(join(tmpdir(), "sharevars-state-"));
  const vars = options.asDeployed ? {} : { SERVER_TOKEN, CLIENT_AUTH: "open", ...options.vars };
  const args = [
    "dev", ...(options.config ? ["--config", options.config] : []), "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort),
    "--persist-to", persistTo, "--show-interactive-dev-session=false", "--log-level", "warn",
    ...Object.entries(vars).flatMap(([key, value]) => ["--var", `${key}:${value}`]),
  ];
  const child: ChildProcess = spawn(join(ROOT, "node_modules/.bin/wrangler"), args, {
    cwd: ROOT,
    detached: true, // its own process group, so stop() also ends workerd
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1", NO_COLOR: "1", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  const url = `http://127.0.0.1:${port}`;

  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited early:\n${output}`);
    try {
      const response = await fetch(url + (options.ready ?? "/"));
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      process.kill(-child.pid!, "SIGKILL");
      throw new Error(`wrangler dev did not answer on ${url}:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  return {
    url,
    port,
    inspectorPort,
    pid: child.pid!,
    persistTo,
    output: () => output,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid!, signal);
      } catch {
        return;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {}
      }, 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
