// Helpers that reach the Durable Objects themselves (not through sockets):
// their stubs, their stored rows, and the two object kinds side by side so a
// test of a shared mechanism runs against both.
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { clientObjectName } from "../../worker/names.js";
import type { SharedObject } from "../../worker/shared-object.js";
import { SERVER_TOKEN, Wire, clientPath, spacePath, unique } from "./wire.js";

export type Stub = DurableObjectStub<SharedObject>;

/** A socket whose HELLO succeeded, with that HELLO's reply. */
export type ReadyWire = Awaited<ReturnType<typeof Wire.ready>>;

export const spaceStub = (space: string): Stub => env.SPACES.getByName(space);
export const clientStub = (space: string, id: string): Stub => env.CLIENTS.getByName(clientObjectName(space, id));

/** One object of a kind, and how to open sockets into it. */
export interface Target {
  stub: Stub;
  /** A HELLO'd socket of the client role (as client `id` on the space object). */
  client(id?: string, hello?: Record<string, unknown>): Promise<ReadyWire>;
  /** A HELLO'd socket of the server role. */
  server(hello?: Record<string, unknown>): Promise<ReadyWire>;
  /** An open socket of the client role that has not said HELLO. */
  raw(): Promise<Wire>;
  /** An open socket of the server role that has not said HELLO. */
  rawServer(): Promise<Wire>;
}

/** A fresh space object: clients and servers share its global dict and queues. */
export function spaceTarget(): Target {
  const space = unique("space");
  return {
    stub: spaceStub(space),
    client: (id = "alice", hello) => Wire.ready(spacePath(space, "client", id), hello),
    server: (hello) => Wire.ready(spacePath(space, "server"), { token: SERVER_TOKEN, ...hello }),
    raw: () => Wire.open(spacePath(space, "client", "alice")),
    rawServer: () => Wire.open(spacePath(space, "server")),
  };
}

/** A fresh client object (client "alice"): only she and servers reach it. */
export function clientTarget(): Target {
  const space = unique("space");
  return {
    stub: clientStub(space, "alice"),
    client: (_id, hello) => Wire.ready(clientPath(space, "alice", "client"), hello),
    server: (hello) => Wire.ready(clientPath(space, "alice", "server"), { token: SERVER_TOKEN, ...hello }),
    raw: () => Wire.open(clientPath(space, "alice", "client")),
    rawServer: () => Wire.open(clientPath(space, "alice", "server")),
  };
}

export const KINDS = [
  ["space object", spaceTarget],
  ["client object", clientTarget],
] as const;

type Row = Record<string, string | number | null>;

/**
 * Every row of every table the object keeps (bytes as hex), to prove that a
 * rejected request changed nothing. Tables of the runtime itself are left out.
 */
export function dumpStorage(stub: Stub): Promise<Record<string, Row[]>> {
  return runInDurableObject(stub, (_instance: SharedObject, state) => {
    const sql = state.storage.sql;
    const tables = sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .toArray()
      .map((t) => t.name)
      .filter((name) => !name.startsWith("_cf_") && !name.startsWith("sqlite_"));
    const dump: Record<string, Row[]> = {};
    for (const table of tables) {
      // In a stable order (some tables have no rowid).
      dump[table] = sql.exec(`SELECT * FROM "${table}"`).toArray().map((row) => {
        const out: Row = {};
        for (const [column, value] of Object.entries(row)) {
          out[column] = value instanceof ArrayBuffer ? hex(value) : (value as string | number | null);
        }
        return out;
      }).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
    }
    return dump;
  });
}

function hex(buffer: ArrayBuffer): string {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

type Gated = { authorize: (...args: unknown[]) => Promise<void>; releaseAuthorize?: () => void; authorizeHeld?: boolean };

/**
 * The object's next credential check (authorize, in a HELLO) waits until
 * releaseAuthorize: a slow check, with other events coming in meanwhile.
 */
export function holdNextAuthorize(stub: Stub): Promise<void> {
  return runInDurableObject(stub, (object: SharedObject) => {
    const o = object as unknown as Gated;
    const real = o.authorize.bind(object);
    const gate = new Promise<void>((resolve) => (o.releaseAuthorize = resolve));
    let first = true;
    o.authorize = async (...args: unknown[]) => {
      if (first) {
        first = false;
        o.authorizeHeld = true;
        await gate;
      }
      return real(...args);
    };
  });
}

/** Resolves once a HELLO is waiting in the check holdNextAuthorize holds (not after a fixed sleep). */
export async function untilAuthorizeHeld(stub: Stub): Promise<void> {
  const deadline = Date.now() + 4000;
  while (!(await runInDurableObject(stub, (object: SharedObject) => (object as unknown as Gated).authorizeHeld === true))) {
    if (Date.now() > deadline) throw new Error("timed out waiting for a HELLO to reach authorize");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export function releaseAuthorize(stub: Stub): Promise<void> {
  return runInDurableObject(stub, (object: SharedObject) => (object as unknown as Gated).releaseAuthorize!());
}
