import { resolve } from "node:path";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Tests that run inside workerd, next to the Durable Objects they test.
export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: resolve(import.meta.dirname, "../../wrangler.toml") },
      miniflare: {
        bindings: { SERVER_TOKEN: "test-server-token", CLIENT_AUTH: "open" },
      },
    }),
  ],
  test: {
    name: "worker",
    root: import.meta.dirname,
    include: ["**/*.test.ts"],
  },
});
