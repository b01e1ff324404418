// One local worker for the whole end-to-end run (each test uses its own
// space), and the built package in dist/ for the tests that use it as users
// do (the examples, `import "sharevars"` from another project).
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import type { TestProject } from "vitest/node";
import { startWorker } from "../helpers/worker.js";

declare module "vitest" {
  export interface ProvidedContext {
    workerUrl: string;
  }
}

const ROOT = resolve(import.meta.dirname, "../..");

export default async function setup(project: TestProject) {
  for (const config of ["tsconfig.build.json", "tsconfig.worker-build.json"]) {
    execFileSync(resolve(ROOT, "node_modules/.bin/tsc"), ["-p", config], { cwd: ROOT, stdio: "inherit" });
  }
  const worker = await startWorker();
  project.provide("workerUrl", worker.url);
  return async () => {
    await worker.stop();
  };
}
