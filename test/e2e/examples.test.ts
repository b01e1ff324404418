// The runnable examples, run as users run them: separate Node processes
// importing the built package "sharevars", against the local worker.
import { resolve } from "node:path";
import { describe, expect, test } from "vitest";
import { processes } from "../helpers/processes.js";
import { SERVER_TOKEN, uniqueSpace, workerUrl } from "../helpers/e2e.js";

const ROOT = resolve(import.meta.dirname, "../..");
const run = processes();

describe("examples", () => {
  test("the distributed integral: four client processes and the server compute pi", async () => {
    const env = { SHAREVARS_URL: workerUrl(), SHAREVARS_SPACE: uniqueSpace("example-integral"), SHAREVARS_TOKEN: SERVER_TOKEN };
    const main = run.node([resolve(ROOT, "examples/integral/main.ts"), "120"], env);
    expect(await main.exited).toBe(0);
    const match = /pi ≈ ([\d.]+)/.exec(main.output());
    expect(match, main.output()).not.toBeNull();
    expect(Math.abs(Number(match![1]) - Math.PI)).toBeLessThan(1e-9);
    const counts = [...main.output().matchAll(/computed (\d+) tasks/g)].map((m) => Number(m[1]));
    expect(counts).toHaveLength(4);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(120);
  });

  test("the chat room: a line typed by alice reaches bob through the server", async () => {
    const env = { SHAREVARS_URL: workerUrl(), SHAREVARS_SPACE: uniqueSpace("example-chat"), SHAREVARS_TOKEN: SERVER_TOKEN };
    const server = run.node([resolve(ROOT, "examples/chat/server.ts")], env);
    await server.waitFor("chat server ready");
    const alice = run.node([resolve(ROOT, "examples/chat/client.ts"), "alice"], env);
    const bob = run.node([resolve(ROOT, "examples/chat/client.ts"), "bob"], env);
    await alice.waitFor("joined");
    await bob.waitFor("joined");
    await alice.waitFor(/\(online: (?=[^)]*alice)(?=[^)]*bob)/); // the roster in the global dict
    alice.child.stdin!.write("Can somebody bring me some milk?\n");
    await bob.waitFor("alice: Can somebody bring me some milk?");
    await alice.waitFor("alice: Can somebody bring me some milk?");
    alice.child.stdin!.end();
    expect(await alice.exited).toBe(0);
    await bob.waitFor("* alice left");
  });
});
