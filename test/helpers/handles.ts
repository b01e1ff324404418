// Opens client and server handles for a test and closes them all afterwards.
import { afterEach } from "vitest";
import { Client, Server, type ClientOptions } from "sharevars";
import { SERVER_TOKEN, workerUrl } from "./e2e.js";

export function handles() {
  const open: { close(options?: { flushTimeout?: number }): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((handle) => handle.close({ flushTimeout: 1000 })));
  });
  return {
    async client(space: string, id: string, options: Partial<ClientOptions> = {}, url = workerUrl()) {
      const client = await Client.connect(url, { space, id, ...options });
      open.push(client);
      return client;
    },
    async server(space: string, url = workerUrl()) {
      const server = await Server.connect(url, { space, token: SERVER_TOKEN });
      open.push(server);
      return server;
    },
  };
}
