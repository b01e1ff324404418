// Glue shared by the handles: a connection that feeds one SharedDict.
import { Connection, type Status } from "./connection.js";
import type { SharedDict } from "./dict.js";
import { Msg, type HelloResult, type Message } from "./protocol.js";

export interface DictConnectionOptions {
  /** Messages the dict does not handle (CLIENT_ONLINE, ...). */
  onMessage?: (message: Message) => void;
  onReady?: (result: HelloResult) => void;
  onStatus?: (status: Status) => void;
  connectTimeout?: number;
}

/** A connection to one object whose dict is replicated into `dict`. */
export function dictConnection(dict: SharedDict, url: string, token: string | undefined, options: DictConnectionOptions = {}): Connection {
  const replica = dict.replica;
  const connection = new Connection({
    url,
    hello: () => ({ ...replica.resume(), ...(token === undefined ? {} : { token }) }),
    onSnapshot: (entries) => replica.snapshotChunk(entries),
    onReady: (result) => {
      replica.snapshotDone(result.full, result.version, result.lastSeq);
      options.onReady?.(result);
    },
    onMessage: (message) => {
      if (message[0] === Msg.CHANGE) replica.remote(message[1], message[2], message[3]);
      else options.onMessage?.(message);
    },
    onStatus: options.onStatus,
    connectTimeout: options.connectTimeout,
  });
  dict.attach(connection);
  return connection;
}

/** Status of a handle made of several connections: open only when all are. */
export function combinedStatus(connections: Connection[]): Status {
  if (connections.some((c) => c.status === "closed")) return "closed";
  return connections.every((c) => c.status === "open") ? "open" : "connecting";
}

/**
 * Closes a handle's connections once its dict writes (`sync`) and every write
 * in flight on them (items sent or put) have their outcome, or after `ms`.
 */
export async function closeAfterWrites(connections: Connection[], sync: Promise<unknown>, ms: number): Promise<void> {
  await flush(Promise.all([sync, ...connections.map((connection) => connection.writesSettled())]), ms);
  for (const connection of connections) connection.close();
}

/** Waits for `work` at most `ms` milliseconds, ignoring its outcome (used before closing). */
async function flush(work: Promise<unknown>, ms: number): Promise<void> {
  const done = work.catch(() => {}); // its failure is reported elsewhere (sync()), never unhandled
  if (ms <= 0) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([done, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
