// The sharevars wire protocol, shared by the worker and the client library.
//
// Every WebSocket message is one binary CBOR frame: an array whose first item
// is a message kind. Requests carry a request id the reply repeats; ids grow
// by one per connection handle and keep growing across reconnects, so an id
// also orders a handle's writes (the object remembers the last one applied).
//
// Shared values travel as nested byte strings (see codec.ts): the objects
// store and forward them without decoding them again.
//
// Sync of one dict (the same for the global dict and each client's dict):
//   client                                   object
//   HELLO {since?, pending?}        ->
//                                   <-   SNAPSHOT chunk* (full, or changes since `since`)
//                                   <-   ERROR for each write of this session from `pending`
//                                        on that the object refused (its ERROR may have been lost)
//                                   <-   REPLY {version, full, lastSeq, ...}
//   DICT_SET/DELETE/CLEAR/UPDATE    ->   applied in arrival order, each one a new version
//                                   <-   REPLY {version} to the writer, CHANGE to every other socket
//
// Pipes and queues (one durable FIFO mechanism, see worker/fifo.ts):
//   PUT kind name value             ->   REPLY null once the item is stored
//   GET kind name wait              ->   REPLY [seq, value] when an item is leased to this socket
//                                        (at once, or when one arrives), or null (no wait / cancelled)
//   ACK [seq...] quiet?             ->   the items leave storage; REPLY how many, unless quiet
//                                        (the library's acks are quiet: a reply to any request it
//                                        sent after an ACK tells it the ACK was stored)
//   CANCEL getId                    ->   a waiting GET ends with REPLY null; REPLY true if it was waiting
//   RELEASE [seq...]                ->   items received for an abandoned GET go back in line
//   SIZE kind name                  ->   REPLY the number of items waiting
//
// Batches (either direction): several frames of one turn in one WebSocket message:
//   BATCH 0 [frame...]              ->   each request served in order, as if sent alone
//                                   <-   BATCH [frame...]: the replies and messages of one event
// One message is one storage transaction on the object, so a batch of puts or
// acks commits once instead of once per item; nothing is reordered.
//
// Heartbeat (text messages, outside the CBOR frames): a library sends PING on
// an open socket every so often; the object's runtime answers PONG without
// waking the object (setWebSocketAutoResponse). See client/socket.ts.
//
// Tokens (space object, server role):
//   ISSUE_TOKEN clientId ttlSeconds ->   REPLY a client token (JWT) for that id in this space
// A client token's socket ends when the token does (token mode):
//                                   <-   RENEW, a while before it expires
//   AUTH token                      ->   REPLY null: the socket lives on until the new token expires
//                                        (ERROR if refused, which changes nothing; nor does a
//                                        token that expires no later than the one in force)
//                                   <-   no new token by the expiry: the socket closes (TOKEN_EXPIRED)
// A pipe named n is two FIFOs, one per direction; the object picks the one a
// role sends to or receives from, so each end only ever gets the other's items.
import { Encoder } from "cbor-x";
import {
  CLOSE_FORBIDDEN, CLOSE_FRAME_TOO_LARGE, CLOSE_HELLO_FAILED, CLOSE_HELLO_TIMEOUT, CLOSE_PROTOCOL_VERSION, CLOSE_SESSION_ENDED,
  CLOSE_SILENT, CLOSE_TOKEN_EXPIRED, CLOSE_TOO_MANY_CONNECTIONS, CLOSE_UNAUTHORIZED, MSG_BATCH, MSG_CHANGE, MSG_CLIENT_OFFLINE, MSG_CLIENT_ONLINE, MSG_ERROR,
  MSG_RENEW, MSG_REPLY, MSG_SNAPSHOT, OP_ACK, OP_AUTH, OP_BATCH, OP_CANCEL, OP_DICT_CLEAR, OP_DICT_DELETE, OP_DICT_SET, OP_DICT_UPDATE, OP_GET,
  OP_HELLO, OP_ISSUE_TOKEN, OP_PUT, OP_RELEASE, OP_SIZE,
} from "./kinds.js";

export * from "./kinds.js";

export const PROTOCOL_VERSION = 1;

/** The heartbeat's text messages (see the top of this file). */
export const PING = "ping";
export const PONG = "pong";

/** Requests, client library -> object (each also a constant of its own: see kinds.ts). */
export const Op = {
  HELLO: OP_HELLO,
  AUTH: OP_AUTH,
  BATCH: OP_BATCH,
  DICT_SET: OP_DICT_SET,
  DICT_DELETE: OP_DICT_DELETE,
  DICT_CLEAR: OP_DICT_CLEAR,
  DICT_UPDATE: OP_DICT_UPDATE,
  PUT: OP_PUT,
  GET: OP_GET,
  ACK: OP_ACK,
  CANCEL: OP_CANCEL,
  RELEASE: OP_RELEASE,
  SIZE: OP_SIZE,
  ISSUE_TOKEN: OP_ISSUE_TOKEN,
} as const;
export type Op = (typeof Op)[keyof typeof Op];

/** Messages, object -> client library. */
export const Msg = {
  REPLY: MSG_REPLY,
  ERROR: MSG_ERROR,
  SNAPSHOT: MSG_SNAPSHOT,
  CHANGE: MSG_CHANGE,
  CLIENT_ONLINE: MSG_CLIENT_ONLINE,
  CLIENT_OFFLINE: MSG_CLIENT_OFFLINE,
  BATCH: MSG_BATCH,
  RENEW: MSG_RENEW,
} as const;
export type Msg = (typeof Msg)[keyof typeof Msg];

// Error codes: every failure a user can act on has one.
//   BAD_FRAME            not a CBOR frame of the protocol's shape
//   BAD_ARGUMENT         a known operation with arguments of the wrong type
//   BAD_VALUE            a value that is not one well-formed encoded value
//   NOT_READY            an operation before a successful HELLO, or a read before the snapshot
//   UNAUTHORIZED         missing or wrong credentials
//   FORBIDDEN            valid credentials, but not for this
//   QUEUE_FULL           a queue or pipe holds its most items or bytes
//   TOO_MANY_WAITS       receives waiting at once on one connection, or over HTTP on one object
//   OUTCOME_UNKNOWN      a write whose reply was lost: the object applied or refused it,
//                        and no longer knows which (worker/sessions.ts)
// (Listed once, as names and values alike: the browser bundle carries it.)
const ERROR_CODES = [
  "BAD_FRAME", "UNKNOWN_OP", "BAD_ARGUMENT", "BAD_VALUE", "PROTOCOL_VERSION", "NOT_READY", "UNAUTHORIZED", "FORBIDDEN",
  "KEY_TOO_LARGE", "VALUE_TOO_LARGE", "TOO_MANY_KEYS", "QUEUE_FULL", "TOO_MANY_CONNECTIONS", "TOO_MANY_WAITS",
  "FRAME_TOO_LARGE", "TIMEOUT", "CLOSED", "INTERNAL", "OUTCOME_UNKNOWN",
] as const;
export const ErrorCode = Object.fromEntries(ERROR_CODES.map((code) => [code, code])) as { readonly [C in (typeof ERROR_CODES)[number]]: C };
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** WebSocket close codes the objects use; a client library does not reconnect after the final ones (see kinds.ts). */
export const CloseCode = {
  UNAUTHORIZED: CLOSE_UNAUTHORIZED,
  FORBIDDEN: CLOSE_FORBIDDEN,
  PROTOCOL_VERSION: CLOSE_PROTOCOL_VERSION,
  HELLO_FAILED: CLOSE_HELLO_FAILED,
  HELLO_TIMEOUT: CLOSE_HELLO_TIMEOUT,
  FRAME_TOO_LARGE: CLOSE_FRAME_TOO_LARGE,
  TOO_MANY_CONNECTIONS: CLOSE_TOO_MANY_CONNECTIONS,
  SILENT: CLOSE_SILENT,
  TOKEN_EXPIRED: CLOSE_TOKEN_EXPIRED,
  SESSION_ENDED: CLOSE_SESSION_ENDED,
} as const;

/** Limits, enforced by the objects and checked early by the client library. */
export const Limits = {
  /** UTF-8 bytes of a dict key. */
  MAX_KEY_BYTES: 1024,
  /** Encoded bytes of one value (SQLite keeps a row under 2 MB). */
  MAX_VALUE_BYTES: 1024 * 1024,
  /** Live keys in one dict. */
  MAX_KEYS_PER_DICT: 100_000,
  /** Bytes of one frame in either direction. */
  MAX_FRAME_BYTES: 1024 * 1024 + 64 * 1024,
  /** Items waiting in one queue or one direction of a pipe. */
  MAX_ITEMS_PER_CHANNEL: 100_000,
  /** Encoded bytes waiting in one queue or one direction of a pipe. */
  MAX_BYTES_PER_CHANNEL: 64 * 1024 * 1024,
  /** Open connections to one space object (clients and servers). */
  MAX_CONNECTIONS_PER_SPACE: 10_000,
  /** Open connections to one client's object (that client's and servers'). */
  MAX_CONNECTIONS_PER_CLIENT: 64,
  /** Frames in one BATCH. */
  MAX_BATCH_FRAMES: 1000,
  /** Bytes a sender puts in one BATCH (a frame over it travels alone). */
  BATCH_BYTES: 256 * 1024,
  /** Receives (GET with wait) waiting at once on one connection, and HTTP takes waiting at once on one object. */
  MAX_WAITS: 1000,
  /** Sequence numbers in one ACK or RELEASE. */
  MAX_ACK_BATCH: 1000,
  /** Entries in one DICT_UPDATE. */
  MAX_UPDATE_ENTRIES: 1000,
  /** A snapshot is sent in frames of about this many bytes. */
  SNAPSHOT_CHUNK_BYTES: 256 * 1024,
  /** UTF-8 bytes of a space name, a client id, or a pipe or queue name. */
  MAX_NAME_BYTES: 200,
  /** Refused writes an object remembers per handle, for a handle whose error replies were lost (worker/sessions.ts). */
  MAX_REFUSALS_KEPT: 1000,
} as const;

/**
 * Limits a deployment may lower (never raise) with worker variables named
 * LIMIT_<NAME>, e.g. LIMIT_MAX_ITEMS_PER_CHANNEL=1000. The worker announces
 * the limits in force in every HELLO reply; the library checks against them.
 */
export const TUNABLE_LIMITS = [
  "MAX_VALUE_BYTES", "MAX_KEYS_PER_DICT", "MAX_ITEMS_PER_CHANNEL", "MAX_BYTES_PER_CHANNEL",
  "MAX_CONNECTIONS_PER_SPACE", "MAX_CONNECTIONS_PER_CLIENT",
] as const;
export type TunableLimit = (typeof TUNABLE_LIMITS)[number];
export type LimitsInForce = Record<TunableLimit, number>;

// (Pure: a browser bundle that does not use it leaves it out.)
export const DEFAULT_LIMITS: LimitsInForce = /* @__PURE__ */ (() => Object.fromEntries(TUNABLE_LIMITS.map((name) => [name, Limits[name]])) as LimitsInForce)();

export type Role = "client" | "server";

/** A pipe has two ends (client and server); a queue is one FIFO everyone shares. */
export type ChannelKind = "pipe" | "queue";

/** What a GET receives: the item's sequence number (to acknowledge it) and its encoded value. */
export type WireItem = [seq: number, value: Uint8Array];

export interface Hello {
  /** Protocol version the library speaks. */
  v: number;
  /** Server token (role "server") or client token (token mode). Never logged. */
  token?: string;
  /** A random id per connection handle: the object remembers its last applied write. */
  session: string;
  /** The dict version the replica already holds, for a delta resume. */
  since?: number;
  /** The id of this session's oldest write still in flight (its outcome unknown), if any. */
  pending?: number;
}

export interface HelloResult {
  /** Dict version after the snapshot. */
  version: number;
  /** true: the snapshot replaces the replica; false: it is the changes since `since`. */
  full: boolean;
  /** The last write request id of this session the object applied (0: none). */
  lastSeq: number;
  /** The limits in force on this worker. */
  limits: LimitsInForce;
  /**
   * Space object, server role: connected clients as [id, order of first
   * connection, since]: `since` names the client's current stay online (it
   * changes when the client leaves and comes back; absent from older workers).
   */
  clients?: OnlineClient[];
  /** From and to which ids refusals of this session's writes may be forgotten (more than the object keeps; see worker/sessions.ts). */
  refusalsForgotten?: [number, number];
}

/** A connected client in a server's HELLO reply: [id, order of first connection, its stay online]. */
export type OnlineClient = [id: string, order: number, since?: string];

/** One dict entry on the wire; a null value is a deletion. */
export type WireEntry = [key: string, value: Uint8Array | null];

export type Request =
  | [typeof Op.HELLO, number, Hello]
  | [typeof Op.AUTH, number, string]
  | [typeof Op.BATCH, 0, Uint8Array[]]
  | [typeof Op.DICT_SET, number, string, Uint8Array]
  | [typeof Op.DICT_DELETE, number, string]
  | [typeof Op.DICT_CLEAR, number]
  | [typeof Op.DICT_UPDATE, number, [string, Uint8Array][]]
  | [typeof Op.PUT, number, ChannelKind, string, Uint8Array]
  | [typeof Op.GET, number, ChannelKind, string, boolean]
  | [typeof Op.ACK, number, number[]] | [typeof Op.ACK, number, number[], boolean]
  | [typeof Op.CANCEL, number, number]
  | [typeof Op.RELEASE, number, number[]]
  | [typeof Op.SIZE, number, ChannelKind, string]
  | [typeof Op.ISSUE_TOKEN, number, string, number];

export type Message =
  | [typeof Msg.REPLY, number, unknown]
  | [typeof Msg.ERROR, number, ErrorCode, string]
  | [typeof Msg.SNAPSHOT, number, WireEntry[]]
  | [typeof Msg.CHANGE, number, WireEntry[], boolean]
  | [typeof Msg.CLIENT_ONLINE, string, number] | [typeof Msg.CLIENT_ONLINE, string, number, string]
  | [typeof Msg.CLIENT_OFFLINE, string]
  | [typeof Msg.BATCH, Uint8Array[]]
  | [typeof Msg.RENEW];

// Frames hold only arrays, maps with string keys, strings, integers, booleans,
// null and byte strings, so a plain CBOR encoder serves them.
const frameCodec = new Encoder({
  useRecords: false,
  mapsAsObjects: true,
  tagUint8Array: false,
  pack: false,
});

export function encodeFrame(frame: Request | Message): Uint8Array<ArrayBuffer> {
  return frameCodec.encode(frame) as Uint8Array<ArrayBuffer>;
}

/** Decodes a frame; throws on malformed bytes. The caller checks the shape. */
export function decodeFrame(data: ArrayBuffer | Uint8Array): unknown {
  return frameCodec.decode(data instanceof Uint8Array ? data : new Uint8Array(data));
}

const utf8 = new TextEncoder();

/** Returns why `key` cannot be a dict key, or null. */
export function checkKey(key: unknown): { code: ErrorCode; message: string } | null {
  if (typeof key !== "string") return { code: ErrorCode.BAD_ARGUMENT, message: `a dict key must be a string, not ${typeof key}` };
  // CBOR text is UTF-8: a lone surrogate would arrive as U+FFFD, another key than the one written.
  if (/\p{Cs}/u.test(key)) return { code: ErrorCode.BAD_ARGUMENT, message: "a dict key must not contain a lone surrogate" };
  // A string of n UTF-16 units has at most 3n UTF-8 bytes: most keys skip the encoding.
  if (key.length * 3 > Limits.MAX_KEY_BYTES && utf8.encode(key).length > Limits.MAX_KEY_BYTES) {
    return { code: ErrorCode.KEY_TOO_LARGE, message: `a dict key is limited to ${Limits.MAX_KEY_BYTES} UTF-8 bytes` };
  }
  return null;
}

/** Returns why `name` is not a valid space name or client id, or null. */
export function checkName(name: unknown, what: string): string | null {
  if (typeof name !== "string" || name.length === 0) return `${what} must be a non-empty string`;
  // A UTF-16 code unit is at most 3 UTF-8 bytes: most names need no encoding to be measured.
  if (name.length * 3 > Limits.MAX_NAME_BYTES && utf8.encode(name).length > Limits.MAX_NAME_BYTES) return `${what} is longer than ${Limits.MAX_NAME_BYTES} bytes`;
  // A URL path segment "." or ".." (also as %2e) is resolved away and would reach another route.
  if (name === "." || name === "..") return `${what} cannot be "." or ".."`;
  return null;
}
