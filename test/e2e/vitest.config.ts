import { resolve } from "node:path";
import { defineConfig } from "vitest/config";

// The real client library (Node >= 22, global WebSocket) against a real local worker.
export default defineConfig({
  resolve: {
    // Tests import the library by its package name, as users do.
    alias: { sharevars: resolve(import.meta.dirname, "../../client/index.ts") },
  },
  test: {
    name: "e2e",
    root: import.meta.dirname,
    include: ["**/*.test.ts"],
    environment: "node",
    globalSetup: ["./global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
