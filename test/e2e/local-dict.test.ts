// The local shared dict: one dict per client, shared by that client and the
// server only.
import { afterEach, describe, expect, test } from "vitest";
import { Client, Server } from "sharevars";
import { SERVER_TOKEN, uniqueSpace, until, workerUrl } from "../helpers/e2e.js";

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((handle) => handle.close()));
});

async function connectClient(space: string, id: string) {
  const client = await Client.connect(workerUrl(), { space, id });
  open.push(client);
  return client;
}

async function connectServer(space: string) {
  const server = await Server.connect(workerUrl(), { space, token: SERVER_TOKEN });
  open.push(server);
  return server;
}

describe("local shared dict", () => {
  test("the seed example: client sets var1, the server reads it and answers", async () => {
    const space = uniqueSpace("local");
    const client = await connectClient(space, "alice");
    const server = await connectServer(space);

    // client side
    client["var1"] = 256;

    // server side
    await until(() => server.clients.length === 1, { what: "the client to be listed" });
    const peer = server.clients[0];
    await peer.ready;
    await until(() => peer["var1"] === 256, { what: "var1 on the server" });
    expect(peer["var1"]).toBe(256);
    peer["var1"] = "Hello world!";

    // client side
    await until(() => client["var1"] === "Hello world!", { what: "the server's write on the client" });
    expect(client["var1"]).toBe("Hello world!");
  });
});
