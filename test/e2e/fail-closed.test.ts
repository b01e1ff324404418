// What `wrangler deploy` ships has no SERVER_TOKEN and no CLIENT_AUTH: it must
// refuse the server role and run clients in token mode (fail closed).
import { afterAll, beforeAll, expect, test } from "vitest";
import { Client, ErrorCode, Server } from "sharevars";
import { startWorker, SERVER_TOKEN, type LocalWorker } from "../helpers/worker.js";
import { uniqueSpace } from "../helpers/e2e.js";

let worker: LocalWorker;
beforeAll(async () => {
  worker = await startWorker({ asDeployed: true });
});
afterAll(async () => {
  await worker?.stop();
});

test("without the SERVER_TOKEN secret the server role is refused, whatever token is offered", async () => {
  for (const token of [SERVER_TOKEN, "anything"]) {
    await expect(Server.connect(worker.url, { space: uniqueSpace("closed"), token })).rejects.toMatchObject({
      name: "AuthError", code: ErrorCode.UNAUTHORIZED, message: expect.stringContaining("SERVER_TOKEN"),
    });
  }
});

test("without CLIENT_AUTH=open clients are in token mode: choosing an id is refused", async () => {
  await expect(Client.connect(worker.url, { space: uniqueSpace("closed"), id: "alice" })).rejects.toMatchObject({
    name: "AuthError", code: ErrorCode.UNAUTHORIZED,
  });
});
