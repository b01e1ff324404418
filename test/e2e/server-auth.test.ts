// The server role needs the server token: Server.connect with a wrong or
// missing one is refused with AuthError UNAUTHORIZED, at once and for good.
import { describe, expect, test } from "vitest";
import { AuthError, ErrorCode, Server, SharevarsError } from "sharevars";
import { Msg } from "../../client/protocol.js";
import { handles } from "../helpers/handles.js";
import { rawSocket } from "../helpers/raw.js";
import { SERVER_TOKEN, uniqueSpace, until, workerUrl } from "../helpers/e2e.js";

const open = handles();

async function expectRefused(token: unknown, space: string) {
  const started = Date.now();
  const outcome = await Server.connect(workerUrl(), { space, token: token as string, connectTimeout: 10_000 }).then(
    (server) => {
      void server.close({ flushTimeout: 0 });
      return "connected";
    },
    (error: unknown) => error,
  );
  expect(outcome, `token ${JSON.stringify(token)}`).toBeInstanceOf(AuthError);
  expect(outcome).toBeInstanceOf(SharevarsError);
  expect(outcome).toMatchObject({ name: "AuthError", code: ErrorCode.UNAUTHORIZED });
  // Refused for good, not retried until the connect timeout.
  expect(Date.now() - started).toBeLessThan(5_000);
}

describe("Server.connect and the server token", () => {
  test("a wrong token is refused with AuthError UNAUTHORIZED", async () => {
    const space = uniqueSpace("server-auth");
    const wrong = [
      "wrong",
      SERVER_TOKEN.slice(0, -1), // a prefix
      SERVER_TOKEN.slice(0, -1) + "X", // same length, last character differs
      "X" + SERVER_TOKEN.slice(1), // same length, first character differs
      SERVER_TOKEN + " ",
      SERVER_TOKEN.toUpperCase(),
      SERVER_TOKEN.repeat(100),
    ];
    for (const token of wrong) await expectRefused(token, space);
  });

  test("a client token is not a server token", async () => {
    const space = uniqueSpace("server-auth");
    const server = await open.server(space);
    const clientToken = await server.issueClientToken("alice");
    await expectRefused(clientToken, space);
  });

  test("a missing or empty token is refused with AuthError UNAUTHORIZED", async () => {
    const space = uniqueSpace("server-auth");
    await expectRefused(undefined, space);
    await expectRefused("", space);
    await expect(Server.connect(workerUrl(), { space } as any)).rejects.toMatchObject({ name: "AuthError", code: ErrorCode.UNAUTHORIZED });
  });

  test("the worker itself refuses the server role without the token (the library's check skipped)", async () => {
    const space = uniqueSpace("server-auth");
    for (const fields of [{}, { token: "" }, { token: "wrong" }]) {
      const socket = await rawSocket(workerUrl(), `/v1/spaces/${space}/ws?role=server`);
      const reply = await socket.hello(fields);
      expect(reply[0]).toBe(Msg.ERROR);
      expect(reply[2]).toBe(ErrorCode.UNAUTHORIZED);
      expect((await socket.closed).code).toBeGreaterThanOrEqual(4000);
    }
  });

  test("refused attempts leave the space as it was; the right token still works", async () => {
    const space = uniqueSpace("server-auth");
    const client = await open.client(space, "alice");
    client.globals["before"] = 1;
    await client.sync();
    await expectRefused("wrong", space);
    const server = await open.server(space);
    expect(server.dict.toObject()).toStrictEqual({ before: 1 });
    await until(() => server.clients.length === 1, { what: "alice to be listed" });
    expect(server.clients.ids()).toEqual(["alice"]);
  });
});
