import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: ["test/worker/vitest.config.ts", "test/e2e/vitest.config.ts"],
  },
});
