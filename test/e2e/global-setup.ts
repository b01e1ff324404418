// One local worker for the whole end-to-end run; each test uses its own space.
import type { TestProject } from "vitest/node";
import { startWorker } from "../helpers/worker.js";

declare module "vitest" {
  export interface ProvidedContext {
    workerUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const worker = await startWorker();
  project.provide("workerUrl", worker.url);
  return async () => {
    await worker.stop();
  };
}
