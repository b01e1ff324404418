// The global shared dict: one dict per space, shared by every client and the
// server.
import { describe, expect, test } from "vitest";
import { handles } from "../helpers/handles.js";
import { uniqueSpace, until } from "../helpers/e2e.js";

const open = handles();

describe("global shared dict", () => {
  test("the seed example: two clients and the server", async () => {
    const space = uniqueSpace("global");
    const computer1 = await open.client(space, "computer1");
    const computer2 = await open.client(space, "computer2");
    const server = await open.server(space);

    // client computer 1
    computer1.globals["test_var"] = [0, "well"];

    // client computer 2
    await until(() => computer2.globals["test_var"] !== undefined, { what: "test_var on computer 2" });
    expect(computer2.globals["test_var"]).toStrictEqual([0, "well"]);
    computer2.globals["message"] = "Can somebody bring me some milk?";

    // server computer
    await until(() => server["message"] !== undefined, { what: "message on the server" });
    expect(server["test_var"]).toStrictEqual([0, "well"]);
    expect(server["message"]).toBe("Can somebody bring me some milk?");

    // and back to computer 1, which sees the whole dict
    await until(() => computer1.globals["message"] !== undefined, { what: "message on computer 1" });
    expect(computer1.globals.dict.toObject()).toStrictEqual({ test_var: [0, "well"], message: "Can somebody bring me some milk?" });
  });

  test("the global dict is per space, and separate from each client's local dict", async () => {
    const space = uniqueSpace("global");
    const other = uniqueSpace("global-other");
    const alice = await open.client(space, "alice");
    const stranger = await open.client(other, "alice"); // same id, another space
    const server = await open.server(space);

    alice.globals["g"] = "global";
    alice["g"] = "local";
    server["from server"] = 1;
    await Promise.all([alice.sync(), server.sync()]);
    await until(() => alice.globals["from server"] === 1, { what: "the server's write on alice" });
    await until(() => server["g"] === "global", { what: "alice's write on the server" });
    const peer = server.clients.get("alice");
    await peer.ready;
    expect(peer["g"]).toBe("local");
    expect(peer.dict.has("from server")).toBe(false);
    expect(alice["from server"]).toBeUndefined();

    // Another space shares neither dict. Its own write, once visible to itself
    // through a fresh server of that space, shows the replica is current.
    const otherServer = await open.server(other);
    otherServer["mine"] = true;
    await until(() => stranger.globals["mine"] === true, { what: "the other space's own write" });
    expect(stranger.globals.dict.toObject()).toStrictEqual({ mine: true });
    expect(stranger.dict.size).toBe(0);
  });
});
