// The Worker entry: routes WebSocket upgrades to the space object or to a
// client's object. Credentials travel in the first frame (HELLO), never in a
// URL, so they cannot end up in a request log.
//
//   GET /                                     -> 200, names the service
//   GET /v1/spaces/:space/ws?role=client&id=  -> space object (client role)
//   GET /v1/spaces/:space/ws?role=server      -> space object (server role)
//   GET /v1/spaces/:space/clients/:id/ws?role=client|server -> that client's object
import { getServerByName } from "partyserver";
import { PROTOCOL_VERSION, checkName } from "../client/protocol.js";
import { clientObjectName } from "./names.js";

export { SpaceObject } from "./space.js";
export { ClientObject } from "./client-object.js";

const SPACE_ROUTE = /^\/v1\/spaces\/([^/]+)\/ws$/;
const CLIENT_ROUTE = /^\/v1\/spaces\/([^/]+)\/clients\/([^/]+)\/ws$/;

function text(status: number, body: string): Response {
  return new Response(body + "\n", { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

function decode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** The request forwarded to an object: only the parts the object may trust. */
function forward(request: Request, role: string, id: string | undefined): Request {
  const url = new URL(request.url);
  url.search = "";
  url.searchParams.set("role", role);
  if (id !== undefined) url.searchParams.set("id", id);
  return new Request(url, request);
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/") {
      return text(200, `sharevars: shared dicts, pipes and queues between one server and many clients (protocol ${PROTOCOL_VERSION})`);
    }
    const spaceMatch = SPACE_ROUTE.exec(url.pathname);
    const clientMatch = spaceMatch ? null : CLIENT_ROUTE.exec(url.pathname);
    if (!spaceMatch && !clientMatch) return text(404, "not found");

    const space = decode((spaceMatch ?? clientMatch)![1]);
    const spaceError = checkName(space, "the space name");
    if (spaceError) return text(400, spaceError);
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") return text(426, "this route takes a WebSocket upgrade");

    const role = url.searchParams.get("role") ?? "client";
    if (role !== "client" && role !== "server") return text(400, "role is client or server");

    if (spaceMatch) {
      const id = role === "client" ? url.searchParams.get("id") : undefined;
      if (role === "client") {
        const idError = checkName(id, "the client id");
        if (idError) return text(400, idError);
      }
      const stub = await getServerByName(env.SPACES, space!);
      return stub.fetch(forward(request, role, id ?? undefined));
    }
    const id = decode(clientMatch![2]);
    const idError = checkName(id, "the client id");
    if (idError) return text(400, idError);
    const stub = await getServerByName(env.CLIENTS, clientObjectName(space!, id!));
    return stub.fetch(forward(request, role, role === "client" ? id! : undefined));
  },
} satisfies ExportedHandler<Env>;
