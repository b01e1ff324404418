// One object per space: the global dict and the registry of the space's
// clients (who has ever connected, in what order, and who is online now).
import { ErrorCode, Msg, Op, checkName, type HelloResult, type OnlineClient, type Role } from "../client/protocol.js";
import { authorizeClient, authorizeServer, issueClientToken, ttlProblem, type TokenLife } from "./auth.js";
import { ProtocolError } from "./errors.js";
import { Schema } from "./schema.js";
import { SharedObject, type ClientsPage, type Socket, type SocketState } from "./shared-object.js";

// The index by order serves a new client's number (max) and GET /clients
// pages; objects of earlier versions get it on their next start.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS clients (id TEXT PRIMARY KEY, ord INTEGER NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS clients_by_ord ON clients (ord);
`;

export class SpaceObject extends SharedObject {
  protected get maxConnections(): number {
    return this.limits.MAX_CONNECTIONS_PER_SPACE;
  }
  protected readonly hasPipes = false;

  #schema?: Schema;

  #sql(): SqlStorage {
    const sql = this.ctx.storage.sql;
    (this.#schema ??= new Schema(sql, "clients", SCHEMA, { added: ["clients_by_ord"] })).create();
    return sql;
  }

  protected async authorize(role: Role, clientId: string | undefined, token: unknown): Promise<TokenLife | undefined> {
    if (role === "server") return void (await authorizeServer(this.env, token));
    return authorizeClient(this.env, this.name, clientId!, token);
  }

  protected async handle(socket: Socket, state: SocketState, op: number, id: number, frame: unknown[]): Promise<void> {
    if (op !== Op.ISSUE_TOKEN) return super.handle(socket, state, op, id, frame);
    if (state.role !== "server") throw new ProtocolError(ErrorCode.FORBIDDEN, "only the server issues client tokens");
    const [, , clientId, ttl] = frame;
    const bad = checkName(clientId, "the client id");
    if (bad) throw new ProtocolError(ErrorCode.BAD_ARGUMENT, bad);
    const badTtl = ttlProblem(ttl);
    if (badTtl) throw new ProtocolError(ErrorCode.BAD_ARGUMENT, badTtl);
    this.send(socket, [Msg.REPLY, id, await issueClientToken(this.env, this.name, clientId as string, ttl as number)]);
  }

  /** Online client ids looked up per statement (see onlineClients; tests lower it). */
  onlineLookupSlice = 1000;

  /** Online clients as [id, order of first connection, since], in that order. */
  onlineClients(): OnlineClient[] {
    // id -> its stay online (a socket that joined before `since` existed: its own id).
    const online = new Map<string, string>();
    for (const socket of this.sockets("client")) {
      const state = socket.state!;
      if (!online.has(state.id!)) online.set(state.id!, state.since ?? socket.id);
    }
    if (online.size === 0) return [];
    // Looked up by id: a space remembers every client it has seen, and only
    // these are online. In slices: one bound string holds at most 2 MB in a
    // deployed object, and 10,000 ids of 200 bytes (more, escaped) exceed it.
    const ids = [...online.keys()];
    const found: OnlineClient[] = [];
    for (let i = 0; i < ids.length; i += this.onlineLookupSlice) {
      for (const row of this.#sql().exec<{ id: string; ord: number }>(
        "SELECT id, ord FROM clients WHERE id IN (SELECT value FROM json_each(?))", JSON.stringify(ids.slice(i, i + this.onlineLookupSlice)),
      )) found.push([row.id, row.ord, online.get(row.id)!]);
    }
    return found.sort((a, b) => a[1] - b[1]);
  }

  protected httpClients(): (offset: number, limit: number) => ClientsPage {
    return (offset, limit) => {
      const online = new Set(this.onlineClients().map(([id]) => id));
      const sql = this.#sql();
      const total = sql.exec<{ n: number }>("SELECT count(*) AS n FROM clients").one().n;
      const clients = sql
        .exec<{ id: string; ord: number; first_seen: number; last_seen: number }>(
          "SELECT id, ord, first_seen, last_seen FROM clients ORDER BY ord LIMIT ? OFFSET ?", limit, offset,
        )
        .toArray()
        .map((row) => {
          // An online client is seen now (its row's last_seen moves when it leaves).
          const isOnline = online.has(row.id);
          return { id: row.id, online: isOnline, order: row.ord, firstSeen: row.first_seen, lastSeen: isOnline ? Date.now() : row.last_seen };
        });
      return { clients, total };
    };
  }

  protected helloExtras(state: SocketState): Partial<HelloResult> {
    return state.role === "server" ? { clients: this.onlineClients() } : {};
  }

  /** Another open socket of client `id` that said HELLO, if any. */
  #otherSocket(id: string, except: Socket): Socket | undefined {
    for (const socket of this.sockets(`client:${id}`)) {
      if (socket.id !== except.id) return socket;
    }
    return undefined;
  }

  #isOnline(id: string, except: Socket): boolean {
    return this.#otherSocket(id, except) !== undefined;
  }

  /** Tells every server socket; never throws (a HELLO that told some cannot be taken back). */
  #tellServers(message: [typeof Msg.CLIENT_ONLINE, string, number, string] | [typeof Msg.CLIENT_OFFLINE, string]): void {
    for (const server of this.sockets("server")) {
      if (server.readyState !== WebSocket.READY_STATE_OPEN) continue;
      try {
        this.send(server, message);
      } catch (error) {
        console.error("sharevars: a send to a server failed", error); // it is closing: its close follows
      }
    }
  }

  protected joined(socket: Socket, state: SocketState): void {
    if (state.role !== "client") return;
    const id = state.id!;
    const sql = this.#sql();
    // A client seen before is only read here: its last_seen is written when
    // it leaves (while online, "online" says more), so its HELLO reply does
    // not wait for a commit. A new client is registered, in order.
    let order = sql.exec<{ ord: number }>("SELECT ord FROM clients WHERE id = ?", id).toArray()[0]?.ord;
    if (order === undefined) {
      const now = Date.now();
      order = sql.exec<{ ord: number }>(
        "INSERT INTO clients (id, ord, first_seen, last_seen) VALUES (?, (SELECT coalesce(max(ord), 0) + 1 FROM clients), ?, ?) RETURNING ord",
        id, now, now,
      ).one().ord;
    }
    // Its stay online: the one of its other sockets, or a new one that this
    // socket begins. A server that was away tells by it that the client left
    // and came back meanwhile (the same id, online before and after).
    const other = this.#otherSocket(id, socket);
    const since = other?.state?.since ?? other?.id ?? socket.id;
    socket.setState({ ...state, since });
    if (!other) this.#tellServers([Msg.CLIENT_ONLINE, id, order, since]);
  }

  protected left(socket: Socket, state: SocketState): void {
    if (state.role !== "client") return;
    const id = state.id!;
    this.#sql().exec("UPDATE clients SET last_seen = ? WHERE id = ?", Date.now(), id);
    if (!this.#isOnline(id, socket)) this.#tellServers([Msg.CLIENT_OFFLINE, id]);
  }
}
