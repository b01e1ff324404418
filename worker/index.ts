// The Worker entry: routes WebSocket upgrades and HTTP API calls to the space
// object or to a client's object. WebSocket credentials travel in the first
// frame (HELLO) and HTTP ones in the Authorization header — never in a URL,
// so they cannot end up in a request log.
//
//   GET /                                           -> 200, names the service
//   GET /v1/spaces/:space/ws?role=client&id=        -> space object (WebSocket, client role)
//   GET /v1/spaces/:space/ws?role=server            -> space object (WebSocket, server role)
//   GET /v1/spaces/:space/clients/:id/ws?role=...   -> that client's object (WebSocket)
//   /v1/spaces/:space/{globals,clients,queues}/...  -> space object (HTTP API, see http.ts)
//   /v1/spaces/:space/clients/:id/{dict,queues,pipes}/... -> that client's object (HTTP API)
//   GET /v1/spaces/:space/inspect                   -> the live inspector page (inspector.ts)
//   GET /v1/spaces/:space/summary                   -> what the inspector shows (server token)
//   POST /v1/spaces/:space/clients/:id/token[?ttl=] -> a client token for that id (server token; answered here)
//
// This module is also the package's `sharevars/worker` entry: an existing
// worker mounts sharevars with `handleRequest` and exports the two classes.
import { ErrorCode, PROTOCOL_VERSION, checkName } from "../client/protocol.js";
import { CLIENT_TOKEN_TTL, authorizeServer, issueClientToken, ttlProblem } from "./auth.js";
import { ProtocolError } from "./errors.js";
import { httpError } from "./http.js";
import { toJson } from "./json.js";
import { inspectorPage, spaceSummary } from "./inspector.js";
import { clientObjectName } from "./names.js";

export { SpaceObject } from "./space.js";
export { ClientObject } from "./client-object.js";

const ROUTE = /^\/v1\/spaces\/([^/]+)(?:\/clients\/([^/]+))?\/(ws|globals|clients|queues|dict|pipes|inspect|summary|token)(\/.*)?$/;

// Objects are reached with the platform's getByName: partyserver reads an
// object's name from its id, so its getServerByName would only add a setName
// call into the object before every request (one more hop per connect).

function text(status: number, body: string): Response {
  return new Response(body + "\n", { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

function decode(segment: string | undefined): string | null {
  if (segment === undefined) return null;
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

// What reaches an object: only the headers and query parameters it needs, so
// nothing a caller adds (partyserver's own x-partykit-* headers, a `_pk`
// connection id, ...) is taken for something the worker entry decided.
const WEBSOCKET_HEADERS = ["upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "sec-websocket-protocol", "sec-websocket-extensions"];
const HTTP_HEADERS = ["content-type", "content-length", "accept"];
const HTTP_QUERY = ["after", "limit", "offset", "wait", "lease"];

function forward(request: Request, path: string, query: Record<string, string>, headerNames: string[]): Request {
  const url = new URL(request.url);
  url.pathname = path;
  url.search = new URLSearchParams(query).toString();
  const headers = new Headers();
  for (const name of headerNames) {
    const value = request.headers.get(name);
    if (value !== null) headers.set(name, value);
  }
  const hasBody = request.method !== "GET" && request.method !== "HEAD";
  return new Request(url, { method: request.method, headers, body: hasBody ? request.body : null });
}

async function websocket(request: Request, env: Env, space: string, id: string | null): Promise<Response> {
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") return text(426, "this route takes a WebSocket upgrade");
  const url = new URL(request.url);
  const role = url.searchParams.get("role") ?? "client";
  if (role !== "client" && role !== "server") return text(400, "role is client or server");
  if (id === null) {
    // The space object: a client says who it is in the query (checked again at HELLO).
    const clientId = role === "client" ? url.searchParams.get("id") : null;
    if (role === "client") {
      const problem = checkName(clientId, "the client id");
      if (problem) return text(400, problem);
    }
    const stub = env.SPACES.getByName(space);
    return stub.fetch(forward(request, url.pathname, role === "client" ? { role, id: clientId! } : { role }, WEBSOCKET_HEADERS));
  }
  const stub = env.CLIENTS.getByName(clientObjectName(space, id));
  return stub.fetch(forward(request, url.pathname, role === "client" ? { role, id } : { role }, WEBSOCKET_HEADERS));
}

/** Throws unless the request carries the server token as `Authorization: Bearer <token>`. */
async function authorizeHttp(request: Request, env: Env): Promise<void> {
  const header = request.headers.get("authorization") ?? "";
  await authorizeServer(env, /^Bearer\s+/i.test(header) ? header.replace(/^Bearer\s+/i, "") : undefined);
}

async function http(request: Request, env: Env, space: string, id: string | null, kind: string, rest: string): Promise<Response> {
  const url = new URL(request.url);
  const allowed = id === null ? ["globals", "clients", "queues", "summary"] : ["dict", "queues", "pipes", "token"];
  // The summary and tokens are answered here, not by an object's router: only GET (POST) of the route itself.
  if (!allowed.includes(kind) || (kind === "summary" && (rest !== "" || request.method !== "GET")) || (kind === "token" && (rest !== "" || request.method !== "POST"))) {
    return httpError(ErrorCode.UNKNOWN_OP, `no route ${request.method} ${url.pathname}`, 404);
  }
  if (request.headers.get("upgrade")) return httpError(ErrorCode.BAD_ARGUMENT, "WebSockets connect to .../ws", 400);
  try {
    await authorizeHttp(request, env);
  } catch (error) {
    return httpError((error as ProtocolError).code, (error as ProtocolError).message);
  }
  try {
    if (kind === "token") return await clientToken(env, space, id!, url.searchParams.get("ttl"));
    if (kind === "summary") {
      const raw = url.searchParams.get("offset") ?? "0";
      const offset = /^\d+$/.test(raw) ? Number(raw) : NaN; // (digits only, as for every number in a query)
      if (!Number.isSafeInteger(offset) || offset < 0) return httpError(ErrorCode.BAD_ARGUMENT, "offset is a non-negative integer");
      // (Its text is bounded by what a summary holds: previews are short; keys and names, at most 1 KiB each.)
      return new Response(toJson(await spaceSummary(env, space, offset), undefined, Infinity), { headers: { "content-type": "application/json", "cache-control": "no-store" } });
    }
    const query = Object.fromEntries(HTTP_QUERY.flatMap((name) => (url.searchParams.has(name) ? [[name, url.searchParams.get(name)!]] : [])));
    const stub = id === null ? env.SPACES.getByName(space) : env.CLIENTS.getByName(clientObjectName(space, id));
    return await stub.fetch(forward(request, `/http/${kind === "globals" ? "dict" : kind}${rest}`, query, HTTP_HEADERS));
  } catch (error) {
    console.error("sharevars: internal error (HTTP)", error);
    return httpError(ErrorCode.INTERNAL, "internal error");
  }
}

/**
 * A client token for `id` (what server.issueClientToken gives, for backends
 * that hold no WebSocket: a token function's route, say). Signed here: no
 * object is woken for it.
 */
async function clientToken(env: Env, space: string, id: string, ttlParam: string | null): Promise<Response> {
  // (Digits only: Number() would take "1e3" or " 5".)
  const ttl = ttlParam === null ? CLIENT_TOKEN_TTL.default : /^\d+$/.test(ttlParam) ? Number(ttlParam) : NaN;
  const problem = ttlProblem(ttl);
  if (problem) return httpError(ErrorCode.BAD_ARGUMENT, `ttl: ${problem}`);
  const now = Date.now();
  const token = await issueClientToken(env, space, id, ttl, now);
  return Response.json({ token, expires: (Math.floor(now / 1000) + ttl) * 1000 }, { headers: { "cache-control": "no-store" } });
}

export interface MountOptions {
  /** A path prefix the routes live under, e.g. "/sharevars" (clients then connect to https://host/sharevars). */
  prefix?: string;
}

/**
 * Serves a sharevars request, or returns null if `request` is not one (so an
 * existing worker can mount sharevars next to its own routes). The worker
 * needs the SPACES and CLIENTS Durable Object bindings (see the README).
 */
export async function handleRequest(request: Request, env: Env, options: MountOptions = {}): Promise<Response | null> {
  const prefix = (options.prefix ?? "").replace(/\/+$/, "");
  let path = new URL(request.url).pathname;
  if (prefix) {
    if (!path.startsWith(prefix + "/")) return null;
    path = path.slice(prefix.length);
  }
  const match = ROUTE.exec(path);
  if (!match) return null;
  const [, rawSpace, rawId, kind, rest = ""] = match;
  const space = decode(rawSpace);
  const spaceError = checkName(space, "the space name");
  if (spaceError) return text(400, spaceError);
  const id = rawId === undefined ? null : decode(rawId);
  if (rawId !== undefined) {
    const idError = checkName(id, "the client id");
    if (idError) return text(400, idError);
  }
  if (kind === "ws") return rest === "" ? websocket(request, env, space!, id) : text(404, "not found");
  if (kind === "inspect") return rest === "" && id === null && request.method === "GET" ? inspectorPage(space!) : text(404, "not found");
  return http(request, env, space!, id, kind, rest);
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    if (new URL(request.url).pathname === "/") {
      return text(200, `sharevars: shared dicts, pipes and queues between one server and many clients (protocol ${PROTOCOL_VERSION})`);
    }
    return (await handleRequest(request, env)) ?? text(404, "not found");
  },
} satisfies ExportedHandler<Env>;
