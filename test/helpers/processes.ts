// Runs Node scripts as separate processes (examples, a consumer project) and
// stops them by PID afterwards.
import { spawn, type ChildProcess } from "node:child_process";
import { afterEach } from "vitest";

export interface Running {
  child: ChildProcess;
  output(): string;
  /** Resolves when the output matches `pattern` (rejects if the process exits first). */
  waitFor(pattern: RegExp | string, timeout?: number): Promise<void>;
  exited: Promise<number | null>;
}

export function processes() {
  const started: ChildProcess[] = [];
  // Every process of this test and what it printed: a wait that fails shows them all.
  const all: { name: string; output: () => string }[] = [];
  const others = (self: object) =>
    all.filter((p) => p !== self).map((p) => `\n--- ${p.name} printed:\n${p.output()}`).join("");
  afterEach(() => {
    all.length = 0;
    for (const child of started.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    }
  });
  return {
    node(args: string[], env: Record<string, string>, cwd?: string): Running {
      const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
      started.push(child);
      let output = "";
      const self = { name: `${args.map((a) => a.split("/").pop()).join(" ")} (pid ${child.pid})`, output: () => output };
      all.push(self);
      const listeners = new Set<() => void>();
      const onData = (chunk: Buffer) => {
        output += chunk;
        for (const listener of listeners) listener();
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
      // "close", not "exit": all its output has been read by then.
      let closed = false;
      const exited = new Promise<number | null>((resolve) => child.on("close", (code) => {
        closed = true;
        for (const listener of listeners) listener();
        resolve(code);
      }));
      return {
        child,
        output: () => output,
        exited,
        waitFor(pattern, timeout = 30_000) {
          const matches = () => (typeof pattern === "string" ? output.includes(pattern) : pattern.test(output));
          return new Promise((resolve, reject) => {
            const timer = setTimeout(() => done(new Error(`timed out waiting for ${pattern} in:\n${output}${others(self)}`)), timeout);
            const done = (error?: Error) => {
              clearTimeout(timer);
              listeners.delete(check);
              error ? reject(error) : resolve();
            };
            const check = () => {
              if (matches()) done();
              else if (closed) done(new Error(`exited (${child.exitCode}) before ${pattern}:\n${output}${others(self)}`));
            };
            listeners.add(check);
            check();
          });
        },
      };
    },
  };
}
