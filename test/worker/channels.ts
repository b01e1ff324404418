// Frame-level helpers for pipes and queues (PUT/GET/ACK/...), and a poll for
// effects the tests cannot await from a socket (a close the object handles
// after the peer already saw it).
import { runInDurableObject } from "cloudflare:test";
import { expect } from "vitest";
import { Msg, Op, type ChannelKind } from "../../client/protocol.js";
import { decodeValue, encodeValue } from "../../client/codec.js";
import type { SharedObject } from "../../worker/shared-object.js";
import type { Stub } from "./objects.js";
import type { Wire } from "./wire.js";

export interface Got {
  seq: number;
  value: unknown;
}

/** PUTs `value` and expects it stored. */
export async function put(wire: Wire, value: unknown, kind: ChannelKind = "queue", name = "default"): Promise<void> {
  expect(await wire.request(Op.PUT, kind, name, encodeValue(value))).toEqual([Msg.REPLY, expect.any(Number), null]);
}

/** Sends a GET without awaiting its reply; returns its request id. */
export function startGet(wire: Wire, kind: ChannelKind = "queue", name = "default", wait = true): number {
  const id = wire.id();
  wire.send([Op.GET, id, kind, name, wait]);
  return id;
}

/** The item GET `id` received, or null (nothing there, or cancelled). */
export async function got(wire: Wire, id: number): Promise<Got | null> {
  const reply = await wire.reply(id);
  expect(reply[0], `GET ${id} got ${JSON.stringify(reply)}`).toBe(Msg.REPLY);
  if (reply[2] === null) return null;
  const [seq, bytes] = reply[2] as [number, Uint8Array];
  return { seq, value: decodeValue(bytes) };
}

/** A GET that does not wait. */
export function take(wire: Wire, kind: ChannelKind = "queue", name = "default"): Promise<Got | null> {
  return got(wire, startGet(wire, kind, name, false));
}

export async function ack(wire: Wire, seqs: number[]): Promise<number> {
  const reply = await wire.request(Op.ACK, seqs);
  expect(reply[0]).toBe(Msg.REPLY);
  return reply[2] as number;
}

export async function size(wire: Wire, kind: ChannelKind = "queue", name = "default"): Promise<number> {
  const reply = await wire.request(Op.SIZE, kind, name);
  expect(reply[0]).toBe(Msg.REPLY);
  return reply[2] as number;
}

/** Starts a GET that waits, and checks that it does wait (nothing it may take yet). */
export async function waitingGet(wire: Wire, kind: ChannelKind = "queue", name = "default"): Promise<number> {
  const id = startGet(wire, kind, name);
  expect(await stillWaiting(wire, id)).toBe(true);
  return id;
}

/** `producer` puts `value` and `receiver` takes it (leased to it, not acknowledged). */
export async function putAndTake(producer: Wire, receiver: Wire, value: unknown): Promise<Got> {
  await put(producer, value);
  return (await take(receiver))!;
}

/**
 * Whether request `id` is still unanswered once the object served everything
 * `wire` sent before now: a reply caused by earlier events would have come first.
 */
export async function stillWaiting(wire: Wire, id: number): Promise<boolean> {
  await size(wire, "queue", "barrier");
  return !wire.frames.some((f) => (f[0] === Msg.REPLY || f[0] === Msg.ERROR) && f[1] === id);
}

export interface StoredItem {
  seq: number;
  fifo: string;
  lease: string | null;
  session: string | null;
  held_until: number | null;
}

function hasTable(state: DurableObjectState, name: string): boolean {
  return state.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", name).toArray().length > 0;
}

/** The FIFO rows as stored (without values). */
export function storedItems(stub: Stub): Promise<StoredItem[]> {
  return runInDurableObject(stub, (_instance: SharedObject, state) => {
    if (!hasTable(state, "fifo_entries")) return []; // created by the first put or wait
    return state.storage.sql
      .exec<{ seq: number; fifo: string; lease: string | null; session: string | null; held_until: number | null }>(
        "SELECT seq, fifo, lease, session, held_until FROM fifo_entries ORDER BY seq",
      )
      .toArray();
  });
}

/** How many waiting GETs the object has kept (with their sockets, or as rows). */
export function storedWaiters(stub: Stub): Promise<number> {
  return runInDurableObject(stub, (instance: SharedObject) => instance.fifo.waiting);
}

/** Polls `check` until it returns true (for effects no socket reports). */
export async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Closes `wire` and waits until the object handled the close: the items in
 * `leased` (delivered to it, not acknowledged) are then held for its session.
 * The peer sees the close before the object's handler runs, hence the poll.
 */
export async function closeHolding(wire: Wire, stub: Stub, leased: number[]): Promise<void> {
  wire.close();
  await wire.closed;
  await until(async () => {
    const held = (await storedItems(stub)).filter((item) => item.lease === null && item.held_until !== null);
    return leased.every((seq) => held.some((item) => item.seq === seq));
  }, `items ${leased} are held`);
}
