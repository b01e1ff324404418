// Glue shared by the handles: a connection that feeds one SharedDict.
import { Connection, type Status } from "./connection.js";
import { after, checkDelay } from "./delays.js";
import type { SharedDict } from "./dict.js";
import type { TokenSource } from "./tokens.js";
import { MSG_CHANGE, type HelloResult, type Message } from "./protocol.js";

export interface DictConnectionOptions {
  /** Messages the dict does not handle (CLIENT_ONLINE, ...). */
  onMessage?: (message: Message) => void;
  onReady?: (result: HelloResult) => void;
  onStatus?: (status: Status) => void;
  connectTimeout?: number;
}

/** A connection to one object whose dict is replicated into `dict`. */
export function dictConnection(dict: SharedDict, url: string, token: TokenSource, options: DictConnectionOptions = {}): Connection {
  const replica = dict.replica;
  const connection = new Connection({
    ...options,
    url,
    token,
    hello: () => replica.resume(),
    onSnapshot: (entries) => replica.snapshotChunk(entries),
    onReady: (result) => {
      replica.snapshotDone(result.full, result.version, result.lastSeq);
      options.onReady?.(result);
    },
    onMessage: (message) => {
      if (message[0] === MSG_CHANGE) replica.remote(message[1], message[2], message[3]);
      else options.onMessage?.(message);
    },
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
 * Closes a handle's connections once every write in flight on them (dict
 * writes, items sent or put) has its outcome, or after `ms`. Their failures
 * are not taken here: a dict write's is the next sync()'s to report. From
 * the call on, the handle refuses new writes and receives (ClosedError):
 * one made now would not be waited for.
 */
export async function closeAfterWrites(connections: Connection[], ms: number): Promise<void> {
  checkDelay(ms, "flushTimeout");
  for (const connection of connections) connection.closing();
  const done = Promise.all(connections.map((connection) => connection.writesSettled()));
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (ms > 0) await Promise.race([done, new Promise<void>((resolve) => (timer = after(ms, resolve)))]);
  clearTimeout(timer);
  for (const connection of connections) connection.close();
}
