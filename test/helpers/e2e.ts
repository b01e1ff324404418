// Small helpers for end-to-end tests: the shared worker's URL, unique space
// names, and waiting for a condition instead of sleeping.
import { inject } from "vitest";
import { SERVER_TOKEN } from "./worker.js";

export { SERVER_TOKEN };

export const workerUrl = (): string => inject("workerUrl");

let counter = 0;
/** A space name no other test uses. */
export function uniqueSpace(label: string): string {
  return `${label}-${process.pid}-${Date.now().toString(36)}-${counter++}`;
}

/** Polls `check` until it returns true (or a non-undefined value), failing after `timeout` ms. */
export async function until<T>(check: () => T | Promise<T>, { timeout = 10_000, interval = 10, what = "condition" } = {}): Promise<T> {
  const deadline = Date.now() + timeout;
  let last: unknown;
  for (;;) {
    try {
      const result = await check();
      if (result !== false && result !== undefined && result !== null) return result;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}
