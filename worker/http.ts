// The HTTP API, object side: the same dicts and FIFOs as the WebSocket
// protocol, for backends and scripts (curl). The worker entry has checked the
// server token and forwards `/http/<route>`; the caller acts as the server.
//
//   GET    /http/dict[?after=&limit=]    the dict as one object, or a CBOR Map (paged: see Sharevars-Next)
//   GET    /http/dict/<key>              one value, 404 if absent
//   PUT    /http/dict/<key>              set it (body: the value)
//   DELETE /http/dict/<key>
//   GET    /http/clients[?offset=&limit=]   the space's clients, a page at a time (space object)
//   GET    /http/summary                 what the inspector shows of this object
//   GET    /http/{queues,pipes}/<name>   { size }
//   POST   /http/{queues,pipes}/<name>   put, or send to the client (body: the value)
//   POST   /http/queues/<name>/get       take the head (pipes: .../recv) — see below
//   POST   /http/{queues,pipes}/<name>/ack/<receipt>       the item leaves storage
//   POST   /http/{queues,pipes}/<name>/release/<receipt>   the item goes back in line
//
// A take waits up to `?wait=` ms and answers 200 with the item or 204. The
// item is leased, not removed: an HTTP caller that went away cannot tell us
// so (workerd does not report it to the object), and an item taken for it
// would be lost. So, as with a WebSocket receiver, the item leaves storage
// when the caller acknowledges it with the receipt from the Sharevars-Receipt
// header; unacknowledged, it returns to the head of the line after `?lease=`
// seconds (30 by default). `?lease=0` removes it at once (at most once).
//
// Bodies are JSON, or CBOR with Content-Type: application/cbor (exact for
// every shareable type); replies are CBOR when Accept asks for it.
import { decodeValue, encodeValue } from "../client/codec.js";
import { ErrorCode, Limits, checkKey, checkName } from "../client/protocol.js";
import { ProtocolError } from "./errors.js";
import { NotJsonError, OverBudgetError, jsonBudget, jsonTree, toJson } from "./json.js";
import type { ClientsPage, SharedObject } from "./shared-object.js";

const CBOR = "application/cbor";
/** Longest wait of an HTTP take. */
export const MAX_HTTP_WAIT_MS = 60_000;
/** Default and longest lease of an item taken over HTTP, in seconds. */
export const HTTP_LEASE_S = { default: 30, max: 3600 } as const;
/** Most keys in one page of GET /dict. */
const MAX_PAGE_KEYS = 1000;
/** Most encoded value bytes in one page of GET /dict (a page holds at least one key). */
const MAX_PAGE_BYTES = 8 * 1024 * 1024;

const STATUS: Partial<Record<ErrorCode, number>> = {
  BAD_ARGUMENT: 400, BAD_VALUE: 400, BAD_FRAME: 400, UNKNOWN_OP: 404, UNAUTHORIZED: 401, FORBIDDEN: 403,
  KEY_TOO_LARGE: 413, VALUE_TOO_LARGE: 413, FRAME_TOO_LARGE: 413, TOO_MANY_KEYS: 409, QUEUE_FULL: 409, TOO_MANY_WAITS: 429,
};

export function httpError(code: ErrorCode, message: string, status = STATUS[code] ?? 500): Response {
  return Response.json({ error: { code, message } }, { status });
}

/** The value as the caller asked: CBOR bytes as stored, or JSON (406 if it cannot be shown as JSON). */
function reply(request: Request, encoded: Uint8Array, headers: Record<string, string> = {}): Response {
  if (request.headers.get("accept")?.includes(CBOR)) return new Response(encoded, { headers: { ...headers, "content-type": CBOR } });
  return json(decodeStored(encoded), headers);
}

/** A stored value, decoded; one an earlier version stored unchecked (see isWellFormedValue) may not decode here. */
function decodeStored(encoded: Uint8Array): unknown {
  try {
    return decodeValue(encoded);
  } catch (error) {
    throw new ProtocolError(ErrorCode.BAD_VALUE, `a stored value cannot be decoded here (${(error as Error).message}); ask for CBOR with Accept: application/cbor`, undefined, 406);
  }
}

function json(value: unknown, headers: Record<string, string> = {}): Response {
  let text: string;
  try {
    text = toJson(value);
  } catch (error) {
    if (!(error instanceof NotJsonError)) throw error;
    throw new ProtocolError(ErrorCode.BAD_VALUE, `this value cannot be shown as JSON (${error.message}); ask for CBOR with Accept: application/cbor`, undefined, 406);
  }
  return new Response(text, { headers: { ...headers, "content-type": "application/json" } });
}

/** The request body as one encoded value; reading stops as soon as it passes the frame limit. */
// A body over the limit is still read (and dropped) up to this much before
// the 413 goes out: a client still sending when the answer came would often
// see its connection reset instead of the answer. Past it, the read stops.
const DRAINED_BYTES = 8 * 1024 * 1024;

async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, size: number): Promise<void> {
  while (size <= DRAINED_BYTES) {
    const { done, value } = await reader.read();
    if (done) return;
    size += value.byteLength;
  }
  await reader.cancel();
}

async function body(request: Request): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? 0);
  const reader = request.body?.getReader();
  if (declared > Limits.MAX_FRAME_BYTES) {
    if (reader) await drain(reader, 0);
    throw tooLarge(declared);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (reader) {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > Limits.MAX_FRAME_BYTES) {
        await drain(reader, size);
        throw tooLarge(size);
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  if (request.headers.get("content-type")?.includes(CBOR)) return bytes; // checked by the object like any value
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    throw new ProtocolError(ErrorCode.BAD_VALUE, "the body is not UTF-8 JSON (send CBOR with Content-Type: application/cbor)");
  }
  try {
    return encodeValue(value);
  } catch (error) {
    if (error instanceof TypeError) throw new ProtocolError(ErrorCode.BAD_VALUE, error.message);
    throw error;
  }
}

function tooLarge(size: number): ProtocolError {
  return new ProtocolError(ErrorCode.FRAME_TOO_LARGE, `a request body is limited to ${Limits.MAX_FRAME_BYTES} bytes (got ${size})`);
}

function intParam(url: URL, name: string, fallback: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  // (Digits only: Number() would take "0x10", "1e3" or " " too.)
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n > max) throw new ProtocolError(ErrorCode.BAD_ARGUMENT, `${name} is an integer from 0 to ${max}`);
  return n;
}

/** One page of the dict, in key order, after `after`: a JSON object, or a CBOR Map. */
function dictPage(object: SharedObject, request: Request, url: URL): Response {
  // No `after`: from the first key ("" is a key too, which `after=` passes).
  const after = url.searchParams.get("after") ?? undefined;
  const limit = intParam(url, "limit", MAX_PAGE_KEYS, MAX_PAGE_KEYS) || MAX_PAGE_KEYS;
  const rows = object.dict.page(after, limit, MAX_PAGE_BYTES);
  const next = (entries: unknown[][]): Record<string, string> => ({ "sharevars-next": encodeURIComponent(entries.at(-1)![0] as string) });
  if (!request.headers.get("accept")?.includes(CBOR)) {
    // One JSON budget for the page, as for one value: the page ends before
    // the value that would pass it (a value past it alone is refused, 406).
    const budget = jsonBudget();
    const shown: [string, unknown][] = [];
    let more = rows.more;
    for (const [key, value] of rows.entries) {
      let tree: unknown;
      try {
        tree = jsonTree(decodeStored(value), budget);
      } catch (error) {
        if (error instanceof OverBudgetError && shown.length > 0) {
          more = true;
          break;
        }
        if (!(error instanceof NotJsonError)) throw error;
        throw new ProtocolError(ErrorCode.BAD_VALUE, `the value of ${JSON.stringify(key)} cannot be shown as JSON (${error.message}); ask for CBOR with Accept: application/cbor`, undefined, 406);
      }
      shown.push([key, tree]);
    }
    // Written pair by pair: an object would put integer-like keys ("9", "10") first, out of the page's order.
    const body = `{${shown.map(([key, tree]) => `${JSON.stringify(key)}:${JSON.stringify(tree)}`).join(",")}}`;
    return new Response(body, { headers: { ...(more ? next(shown) : {}), "content-type": "application/json" } });
  }
  const headers: Record<string, string> = rows.more ? next(rows.entries) : {};
  const entries = new Map(rows.entries.map(([key, value]) => [key, decodeStored(value)]));
  let page: Uint8Array;
  try {
    page = encodeValue(entries);
  } catch (error) {
    // A value an earlier version stored unchecked (see isWellFormedValue).
    if (!(error instanceof TypeError)) throw error;
    throw new ProtocolError(ErrorCode.BAD_VALUE, `a value of this page cannot be encoded again (${error.message}); read keys one at a time`, undefined, 406);
  }
  return new Response(page, { headers: { ...headers, "content-type": CBOR } });
}

async function channel(object: SharedObject, request: Request, url: URL, kind: "queue" | "pipe", parts: string[]): Promise<Response> {
  const [, name, action, receipt] = parts;
  const method = request.method;
  const takes = kind === "queue" ? "get" : "recv";
  if (parts.length === 2 && method === "GET") {
    return Response.json({ size: object.fifo.size(object.fifoName(kind, name, "server", "receive")) });
  }
  if (parts.length === 2 && method === "POST") {
    object.putItem(object.fifoName(kind, name, "server", "send"), await body(request));
    return Response.json({ ok: true });
  }
  if (parts.length === 3 && action === takes && method === "POST") {
    const wait = intParam(url, "wait", 0, MAX_HTTP_WAIT_MS);
    const lease = intParam(url, "lease", HTTP_LEASE_S.default, HTTP_LEASE_S.max);
    const fifo = object.fifoName(kind, name, "server", "receive");
    const respond = (value: Uint8Array, receipt?: string) => reply(request, value, receipt ? { "sharevars-receipt": receipt } : {});
    return (await object.takeForHttp(fifo, wait, lease * 1000, respond)) ?? new Response(null, { status: 204 });
  }
  if (parts.length === 4 && (action === "ack" || action === "release") && method === "POST") {
    const fifo = object.fifoName(kind, name, "server", "receive");
    const done = action === "ack" ? object.ackForHttp(fifo, receipt) : object.releaseForHttp(fifo, receipt);
    // 404: the item went to someone else after the lease ended, or the receipt is not one of ours.
    // (Acknowledged late, while still nobody else has it, the item leaves storage as usual.)
    return done ? Response.json({ ok: true }) : httpError(ErrorCode.BAD_ARGUMENT, "no item is leased with this receipt (its lease may have ended)", 404);
  }
  return notFound(request, url);
}

function notFound(request: Request, url: URL): Response {
  return httpError(ErrorCode.UNKNOWN_OP, `no route ${request.method} ${url.pathname.slice("/http".length)}`, 404);
}

export async function handleHttp(object: SharedObject, request: Request, clients?: (offset: number, limit: number) => ClientsPage): Promise<Response> {
  const url = new URL(request.url);
  const method = request.method;
  try {
    let parts: string[];
    try {
      parts = url.pathname.split("/").slice(2).map(decodeURIComponent); // after "/http"
    } catch {
      throw new ProtocolError(ErrorCode.BAD_ARGUMENT, "the path is not valid percent-encoding");
    }
    const [what, name] = parts;
    if (what === "dict" && parts.length === 1 && method === "GET") return dictPage(object, request, url);
    if (what === "dict" && parts.length === 2) {
      const bad = checkKey(name);
      if (bad) throw new ProtocolError(bad.code, bad.message);
      if (method === "GET") {
        const value = object.dict.read(name);
        return value ? reply(request, value) : httpError(ErrorCode.BAD_ARGUMENT, `no key ${JSON.stringify(name)}`, 404);
      }
      if (method === "PUT") return Response.json({ version: object.writeDict({ kind: "set", entries: [[name, await body(request)]] }).version });
      if (method === "DELETE") return Response.json({ version: object.writeDict({ kind: "delete", key: name }).version });
    }
    if (what === "clients" && parts.length === 1 && method === "GET" && clients) {
      return Response.json(clients(intParam(url, "offset", 0, Number.MAX_SAFE_INTEGER), intParam(url, "limit", MAX_PAGE_KEYS, MAX_PAGE_KEYS) || MAX_PAGE_KEYS));
    }
    if (what === "summary" && parts.length === 1 && method === "GET") return Response.json(object.summary());
    if ((what === "queues" || what === "pipes") && parts.length >= 2) {
      const bad = checkName(name, what === "queues" ? "a queue name" : "a pipe name");
      if (bad) throw new ProtocolError(ErrorCode.BAD_ARGUMENT, bad);
      return await channel(object, request, url, what === "queues" ? "queue" : "pipe", parts);
    }
    return notFound(request, url);
  } catch (error) {
    if (error instanceof ProtocolError) return httpError(error.code, error.message, error.status);
    console.error("sharevars: internal error (HTTP)", error);
    return httpError(ErrorCode.INTERNAL, "internal error");
  }
}
