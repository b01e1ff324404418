// The server handle: `server["k"]` is the space's global dict,
// `server.clients` the connected clients, each a ClientPeer whose dict is
// that client's local dict. It holds one connection to the space object and
// opens one per client peer it touches.
import type { Connection, Status } from "./connection.js";
import { SharedDict, type ChangeEvent } from "./dict.js";
import { Emitter } from "./emitter.js";
import { AuthError } from "./errors.js";
import { checkDelay } from "./delays.js";
import { DictHandle, PipeEnd } from "./handle.js";
import { checkName, ErrorCode, MSG_CLIENT_OFFLINE, MSG_CLIENT_ONLINE, OP_ISSUE_TOKEN, type HelloResult, type Message, type OnlineClient } from "./protocol.js";
import { dictProxy, inspectSymbol, reservedNames } from "./proxy.js";
import { clientObjectUrl, spaceUrl } from "./urls.js";
import { tokenSource, type TokenSource } from "./tokens.js";
import { closeAfterWrites, combinedStatus, dictConnection } from "./wiring.js";

export interface ServerOptions {
  space: string;
  /** The server token (the worker's SERVER_TOKEN secret; `dev-server-token` under `npm run dev`). */
  token: string;
  /** How long connect() may take before it rejects with a ClosedError, in ms (default 15000). */
  connectTimeout?: number;
}

type ServerEvents = {
  connect: [ClientPeer];
  disconnect: [string];
  change: [ChangeEvent];
  status: [Status];
};


/** The server's handle on one client: that client's local dict (and its pipes and queues). */
export class ClientPeer extends PipeEnd {
  #id: string;
  #open: () => Connection;
  #connection: Connection | null = null;
  #ready: Promise<void> | null = null;
  #isOnline: () => boolean;
  #serverClosing: () => boolean;

  /** @internal Use server.clients[i] or server.clients.get(id). */
  constructor(id: string, dict: SharedDict, open: (dict: SharedDict) => Connection, isOnline: () => boolean, serverClosing: () => boolean) {
    super(dict, () => this.#connect());
    this.#id = id;
    this.#open = () => open(dict);
    this.#isOnline = isOnline;
    this.#serverClosing = serverClosing;
  }

  /**
   * The connection to the client's object, opened on first use, and again
   * after one that ended while the server stayed open (its first connect
   * timed out in an outage, or was refused): such a peer is not dead for good.
   */
  #connect(): Connection {
    const current = this.#connection;
    if (current && (current.status !== "closed" || this.#serverClosing())) return current;
    this.#ready = null;
    return (this.#connection = this.#open());
  }

  get id(): string {
    return this.#id;
  }

  /** Whether the client is connected to the space now. Its dict is reachable either way. */
  get online(): boolean {
    return this.#isOnline();
  }

  /** Resolves once the client's local dict is loaded; dict reads are synchronous after it. */
  get ready(): Promise<void> {
    const connection = this.#connect(); // (first: a new connection has a new ready)
    return (this.#ready ??= connection.ready.then(() => undefined));
  }

  /** The client's local dict as a Map-like live view. Reads need `await peer.ready` first. */
  override get dict(): SharedDict {
    this.#connect();
    return super.dict;
  }

  /** "change": every change applied to the client's dict (listening connects to it). */
  override on(event: "change", listener: (change: ChangeEvent) => void): () => void {
    this.#connect();
    return super.on(event, listener);
  }

  // (toJSON is the handle's: before `ready` it throws NotReadyError, like every read.)

  // Node calls it on the proxy, which has no private fields: public members only.
  override [inspectSymbol](): string {
    return `ClientPeer ${JSON.stringify(this.id)} (${this.online ? "online" : "offline"})`;
  }
}

/**
 * `server.clients`: the connected clients in the order they first connected
 * (`clients[0]`, `clients.length`, `for (const peer of clients)`), and
 * `clients.get(id)` for any client id, connected or not.
 */
export class ClientList implements Iterable<ClientPeer> {
  readonly [index: number]: ClientPeer;
  #online: () => OnlineClient[];
  #peer: (id: string) => ClientPeer;

  /** @internal */
  constructor(online: () => OnlineClient[], peer: (id: string) => ClientPeer) {
    this.#online = online;
    this.#peer = peer;
    return new Proxy(this, {
      get(target, name, receiver) {
        if (typeof name === "string" && /^(0|[1-9]\d*)$/.test(name)) return target.at(Number(name));
        const value = Reflect.get(target, name, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }

  /** How many clients are connected now. */
  get length(): number {
    return this.#online().length;
  }

  /** The i-th connected client (negative counts from the end), or undefined. */
  at(index: number): ClientPeer | undefined {
    const online = this.#online();
    const entry = online[index < 0 ? online.length + index : index];
    return entry ? this.#peer(entry[0]) : undefined;
  }

  /** The peer of client `id`, connected or not: its local dict persists while it is away. */
  get(id: string): ClientPeer {
    const problem = checkName(id, "the client id");
    if (problem) throw new TypeError(problem);
    return this.#peer(id);
  }

  /** Ids of the connected clients, in order. */
  ids(): string[] {
    return this.#online().map(([id]) => id);
  }

  *[Symbol.iterator](): IterableIterator<ClientPeer> {
    for (const id of this.ids()) yield this.#peer(id);
  }

  // The array methods one reaches for, over the connected clients now.
  map<T>(fn: (peer: ClientPeer, index: number) => T): T[] {
    return [...this].map(fn);
  }

  forEach(fn: (peer: ClientPeer, index: number) => void): void {
    [...this].forEach(fn);
  }

  filter(fn: (peer: ClientPeer, index: number) => unknown): ClientPeer[] {
    return [...this].filter(fn);
  }

  find(fn: (peer: ClientPeer, index: number) => unknown): ClientPeer | undefined {
    return [...this].find(fn);
  }

  some(fn: (peer: ClientPeer, index: number) => unknown): boolean {
    return [...this].some(fn);
  }
}


export class Server extends DictHandle<ServerEvents> {
  #url: string;
  #space: string;
  #token: TokenSource;
  #connection: Connection;
  #online: OnlineClient[] = [];
  #peers = new Map<string, ClientPeer>();
  #peerConnections: Connection[] = [];
  #events: Emitter<ServerEvents>;
  #clients: ClientList;
  #connectTimeout: number | undefined;
  /** close() was called: a peer touched from then on opens nothing. */
  #closing = false;

  /** Connects to `space` with the server token; resolves once the global dict is loaded. */
  static async connect(url: string, options: ServerOptions): Promise<Server> {
    const server = new Server(url, options);
    try {
      await server.#connection.ready;
    } catch (error) {
      await server.close({ flushTimeout: 0 });
      throw error;
    }
    return dictProxy(server, () => server.dict);
  }

  /** @internal Use Server.connect(). */
  constructor(url: string, options: ServerOptions) {
    const problem = checkName(options?.space, "space");
    if (problem) throw new TypeError(problem);
    // A missing token is refused like a wrong one (AuthError, UNAUTHORIZED), without asking the worker.
    if (options.token === undefined || options.token === "") throw new AuthError(ErrorCode.UNAUTHORIZED, "Server.connect needs the server token ({ token })");
    if (typeof options.token !== "string") throw new TypeError("the server token must be a string");
    const global = new SharedDict("the global dict");
    const events = new Emitter<ServerEvents>();
    super(global, () => this.#connection, events);
    this.#events = events;
    this.#url = url;
    this.#space = options.space;
    this.#token = tokenSource(options);
    this.#connectTimeout = options.connectTimeout;
    this.#clients = new ClientList(() => this.#online, (id) => this.#peer(id));
    this.#connection = dictConnection(global, spaceUrl(url, options.space, { role: "server" }), this.#token, {
      onReady: (result) => this.#onReady(result),
      onMessage: (message) => this.#onMessage(message),
      onStatus: () => {
        // Closed for good (refused on reconnect): the peers' connections close too.
        if (this.status === "closed") void this.close({ flushTimeout: 0 });
        events.emit("status", this.status);
      },
      connectTimeout: options.connectTimeout,
    });
  }

  #peer(id: string): ClientPeer {
    let peer = this.#peers.get(id);
    if (!peer) {
      const open = (dict: SharedDict) => {
        const connection = dictConnection(dict, clientObjectUrl(this.#url, this.#space, id, "server"), this.#token, {
          connectTimeout: this.#connectTimeout,
        });
        // A closed (or closing) server leaves no socket behind: its peers' connections are closed
        // at birth (their ready, pipes and queues reject with a ClosedError).
        if (this.#closing) connection.close();
        else this.#peerConnections = [...this.#peerConnections.filter((other) => other.status !== "closed"), connection];
        return connection;
      };
      const core = new ClientPeer(id, new SharedDict(`the local dict of ${JSON.stringify(id)}`), open, () => this.#online.some(([other]) => other === id), () => this.#closing);
      peer = dictProxy(core, () => core.dict);
      this.#peers.set(id, peer);
    }
    return peer;
  }

  /**
   * After each (re)connect: the connected clients now; tell what changed
   * while away, a client that left and came back meanwhile (a new stay
   * online) included: its disconnect, then its connect. One change at a
   * time, as if it had come live: each event sees `server.clients` (and
   * `peer.online`) as it would have been then, the departures first.
   */
  #onReady(result: HelloResult): void {
    const now = result.clients ?? [];
    const stays = new Map(now.map(([id, , since]) => [id, since]));
    const list = (this.#online = [...this.#online]);
    let at = 0;
    for (const [id, , since] of [...list]) {
      if (stays.get(id) === since) at++;
      else {
        list.splice(at, 1);
        this.#events.emit("disconnect", id);
      }
    }
    // Both in order of first connection: each newcomer goes in at its place.
    at = 0;
    for (const entry of now) {
      while (at < list.length && list[at][1] < entry[1]) at++;
      if (list[at]?.[0] === entry[0]) at++;
      else {
        list.splice(at++, 0, entry);
        this.#events.emit("connect", this.#peer(entry[0]));
      }
    }
  }

  #onMessage(message: Message): void {
    if (message[0] === MSG_CLIENT_ONLINE) {
      const [, id, order, since] = message;
      const known = this.#online.find(([other]) => other === id);
      if (known && known[2] === since) return;
      const rest = this.#online.filter(([other]) => other !== id);
      // Online already, in an earlier stay: it left (its socket not yet seen closed) and is back.
      if (known) {
        this.#online = rest;
        this.#events.emit("disconnect", id);
      }
      this.#online = [...rest, [id, order, since] as OnlineClient].sort((a, b) => a[1] - b[1]);
      this.#events.emit("connect", this.#peer(id));
    } else if (message[0] === MSG_CLIENT_OFFLINE) {
      const id = message[1];
      if (!this.#online.some(([other]) => other === id)) return;
      this.#online = this.#online.filter(([other]) => other !== id);
      this.#events.emit("disconnect", id);
    }
  }

  get space(): string {
    return this.#space;
  }

  get status(): Status {
    return combinedStatus([this.#connection]);
  }

  /** The connected clients; `clients.get(id)` reaches any client. */
  get clients(): ClientList {
    return this.#clients;
  }

  /**
   * A client token for client `id` in this space (token mode): the client
   * connects with `Client.connect(url, { space, token })`. It expires after
   * `ttlSeconds` (default 3600, at most 30 days); rotating SERVER_TOKEN revokes
   * every token issued.
   */
  async issueClientToken(id: string, { ttlSeconds = 3600 }: { ttlSeconds?: number } = {}): Promise<string> {
    const problem = checkName(id, "the client id");
    if (problem) throw new TypeError(problem);
    return (await this.#connection.request((rid) => [OP_ISSUE_TOKEN, rid, id, ttlSeconds])) as string;
  }

  /** Resolves when every write so far (global dict and every peer's dict) is durable. */
  async sync(): Promise<void> {
    await Promise.all([super.sync(), ...[...this.#peers.values()].map((peer) => peer.sync())]);
  }

  /**
   * Waits up to `flushTimeout` ms (default 5000) for pending writes (dict
   * writes, and items sent or put) to be durable, then closes every connection.
   */
  async close({ flushTimeout = 5000 }: { flushTimeout?: number } = {}): Promise<void> {
    checkDelay(flushTimeout, "flushTimeout"); // (before anything changes: a bad call closes nothing)
    this.#closing = true;
    await closeAfterWrites([this.#connection, ...this.#peerConnections], flushTimeout);
  }

}

/** Names on a client peer that are not keys of the client's local dict (besides those of Object.prototype, which are not listed). */
export const PEER_RESERVED = /* @__PURE__ */ reservedNames(ClientPeer);

/** Names on `server` that are not global dict keys (besides those of Object.prototype, which are not listed). */
export const SERVER_RESERVED = /* @__PURE__ */ reservedNames(Server);
