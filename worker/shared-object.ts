// What both Durable Object kinds share: the socket lifecycle (through
// partyserver, which handles hibernation), frame decoding and error replies,
// the HELLO handshake, the versioned dict and the FIFOs every object owns.
// A subclass says who may connect (`authorize`) and which channels it has.
import { Server, type Connection, type ConnectionContext, type WSMessage } from "partyserver";
import {
  CloseCode, ErrorCode, Limits, Msg, Op, PING, PONG, PROTOCOL_VERSION, checkName,
  decodeFrame, encodeFrame, type HelloResult, type LimitsInForce, type Message, type Role,
} from "../client/protocol.js";
import { decodeValue } from "../client/codec.js";
import { VersionedDict, type AppliedWrite, type DictWrite } from "./dict.js";
import type { TokenLife } from "./auth.js";
import { ProtocolError } from "./errors.js";
import { Fifo, type ChannelLength, type Delivery, type Item, type WaitStore, type Waiter } from "./fifo.js";
import { Sessions } from "./sessions.js";
import { limitsFor } from "./limits.js";
import { handleHttp } from "./http.js";
import { Outbox } from "./outbox.js";
import { checkValue, isRequestId, parseDictWrite, parseHello, parseSeqs } from "./parse.js";
import { HttpTakes } from "./http-takes.js";
import { LateCancels, type Held } from "./late-cancels.js";
import { preview } from "./json.js";

/** Per-socket identity, kept in the socket attachment so it survives hibernation. */
export interface SocketState {
  role: Role;
  /** The client id (client role only). */
  id?: string;
  session: string;
  /** Space object, client role: the socket that began the client's current stay online (see space.ts). */
  since?: string;
  /** Its waiting receives as [fifo, request id, order] (see fifo.ts), unless they did not fit here. */
  waits?: readonly (readonly [fifo: string, request: number, ord: number])[];
  /** The fifos it holds back after a CANCEL that came too late, with the items they wait for (see late-cancels.ts). */
  held?: Held;
  /** Token mode, client role: when its token expires, and when to ask for a new one (its expiry once asked: see tokenTimes). */
  expires?: number;
  renewAt?: number;
}

/** See SharedObject.maxWaits. */
const MAX_WAITS_PER_OBJECT = 100_000;

/** How long a socket may take to say HELLO before the object closes it (one over the connection limit: OVER_LIMIT_HELLO_MS). */
const HELLO_TIMEOUT_MS = 10_000;
const OVER_LIMIT_HELLO_MS = 3000;

/** The reason a socket closes with when a newer socket of its session took its place. */
const SUPERSEDED = "superseded by a newer socket of its session";

/**
 * A socket whose library pinged (client/connection.ts: every 20 s) and then fell
 * silent this long is taken for dead: its link dropped without a close, which
 * the runtime may not notice for a long while. Its end is handled as a close
 * (what it was given is held for its session; its client goes offline).
 * Sockets of libraries that never ping (older ones) are left alone. Not one
 * minute: a hidden browser tab runs chained timers once a minute (Chrome's
 * intensive throttling), so its pings come 60 s apart, some a little later.
 */
const SILENT_MS = 90_000;
/** HELLOs and HTTP requests look for silent sockets at most this often (a pass over every socket). */
const SILENT_SWEEP_MS = 10_000;
const SILENT_REASON = `no ping for ${SILENT_MS / 1000} s: taken for dead`;
const TOKEN_EXPIRED = "the client token expired (and no new one came)";

// What a socket keeps of its waits in its attachment (which workerd bounds in
// size); the rest are rows.
const ATTACHED_WAITS = 8;
const ATTACHED_WAIT_BYTES = 512;
// Likewise for what a socket holds back after a late CANCEL (usually one
// fifo and one item); more stays in memory only.
const ATTACHED_HELD = 8;
const ATTACHED_HELD_BYTES = 512;

export type Socket = Connection<SocketState>;

/** Requests that write: a refusal of one is remembered for its session (see sessions.ts). */
const WRITES: ReadonlySet<number> = new Set([Op.DICT_SET, Op.DICT_DELETE, Op.DICT_CLEAR, Op.DICT_UPDATE, Op.PUT]);

/** One page of a space's clients, in order of first connection. */
export interface ClientsPage {
  clients: { id: string; online: boolean; order: number; firstSeen: number; lastSeen: number }[];
  /** Clients the space has ever seen. */
  total: number;
}

/** The inspector's view of one object. */
export interface ObjectSummary {
  version: number;
  /** Live keys in the dict. */
  keys: number;
  /** The first keys, each with a short JSON preview of its value (see `truncated`). */
  dict: [key: string, preview: string][];
  truncated: boolean;
  /** The first queues and pipe directions that hold items or receivers (see `moreChannels`). */
  channels: ChannelLength[];
  moreChannels: boolean;
}

// The inspector shows at most this much of a dict per refresh.
const SUMMARY_KEYS = 200;
const SUMMARY_BYTES = 256 * 1024;
const SUMMARY_CHANNELS = 200;


export abstract class SharedObject<E extends Env = Env> extends Server<E> {
  static options = { hibernate: true };

  constructor(ctx: DurableObjectState, env: E) {
    super(ctx, env);
    // The libraries' heartbeat (client/socket.ts): the runtime answers it
    // without waking the object, and a hibernating object stays asleep.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING, PONG));
  }

  #dict?: VersionedDict;
  #fifo?: Fifo;
  #sessions?: Sessions;

  // Each mechanism is created (with its schema) on first use after each wake.
  get dict(): VersionedDict {
    return (this.#dict ??= new VersionedDict(this.ctx.storage.sql));
  }

  get fifo(): Fifo {
    return (this.#fifo ??= new Fifo(this.ctx.storage.sql, this.#waitStore, (fn) => this.ctx.storage.transactionSync(fn)));
  }

  // Waits are kept with their sockets: an attachment survives hibernation and
  // ends with its socket, as a wait does, and setting it commits nothing.
  #waitStore: WaitStore = {
    load: () => {
      const waits: Waiter[] = [];
      for (const socket of this.getConnections<SocketState>()) {
        const state = socket.state;
        for (const [fifo, request, ord] of state?.waits ?? []) waits.push({ ord, fifo, request, socket: socket.id, session: state!.session });
      }
      return waits;
    },
    save: (id, waits) => {
      const socket = this.#helloed().get(id);
      const state = socket?.state;
      if (!socket || !state) return false;
      let bytes = 0;
      for (const w of waits) bytes += w.fifo.length;
      if (waits.length > ATTACHED_WAITS || bytes > ATTACHED_WAIT_BYTES) return false;
      const { waits: _, ...rest } = state;
      const next: SocketState = waits.length === 0 ? rest : { ...rest, waits: waits.map((w): [string, number, number] => [w.fifo, w.request, w.ord]) };
      try {
        socket.setState(next);
      } catch {
        socket.setState(state); // too large for an attachment after all
        return false;
      }
      return true;
    },
  };

  get sessions(): Sessions {
    return (this.#sessions ??= new Sessions(this.ctx.storage.sql));
  }

  /** The limits in force (the protocol's, or lower ones the deployment set). */
  get limits(): LimitsInForce {
    return limitsFor(this.env);
  }

  /** Whether this object has pipes (client objects) or only queues (the space object). */
  protected abstract readonly hasPipes: boolean;

  /**
   * Most receives waiting at once on this object, over all its connections
   * (each is in memory while it waits, and a put looks through them): the
   * per-connection limit times the connections would allow millions.
   */
  get maxWaits(): number {
    return MAX_WAITS_PER_OBJECT;
  }

  /** Most sockets that may have said HELLO at once. */
  protected abstract get maxConnections(): number;

  /** Throws a ProtocolError unless `token` lets this socket take its role; returns how long it may (none: for good). */
  protected abstract authorize(role: Role, clientId: string | undefined, token: unknown): Promise<TokenLife | undefined>;

  /** Extra fields of the HELLO reply. */
  protected helloExtras(_state: SocketState): Partial<HelloResult> {
    return {};
  }

  /** Called once a socket's HELLO succeeded. */
  protected joined(_socket: Socket, _state: SocketState): void {}

  /** Called when a socket that said HELLO closes. */
  protected left(_socket: Socket, _state: SocketState): void {}

  // The worker entry sets role and id in the URL it forwards; tags find sockets after waking.
  getConnectionTags(_connection: Connection, context: ConnectionContext): string[] {
    const url = new URL(context.request.url);
    const role = url.searchParams.get("role");
    const id = url.searchParams.get("id");
    return role === "server" ? ["server"] : ["client", `client:${id}`];
  }

  protected static roleOf(socket: Connection): { role: Role; clientId?: string } {
    const tags = socket.tags;
    if (tags.includes("server")) return { role: "server" };
    const tag = tags.find((t) => t.startsWith("client:"));
    return { role: "client", clientId: tag?.slice("client:".length) };
  }

  /** Sockets that completed HELLO, optionally only those with `tag`. */
  protected *sockets(tag?: string): Generator<Socket> {
    if (tag === undefined) {
      for (const socket of this.#helloed().values()) if (socket.readyState === WebSocket.READY_STATE_OPEN) yield socket;
      return;
    }
    for (const socket of this.getConnections<SocketState>(tag)) {
      if (socket.state) yield socket;
    }
  }

  // Every socket that completed HELLO by id, in order of HELLO, kept from
  // one event to the next: a dict write sends its change to each, and a
  // delivery finds its socket, without a pass over getConnections (or
  // partyserver's getConnection, the same pass), which reads (deserializes)
  // the attachment of every socket each time. Built by the first use after
  // each wake, then kept up to date by HELLO, close and error.
  #helloedCache: Map<string, Socket> | null = null;

  #helloed(): Map<string, Socket> {
    if (this.#helloedCache === null) {
      const all = new Map<string, Socket>();
      for (const socket of this.getConnections<SocketState>()) {
        const state = socket.state;
        if (!state) continue;
        all.set(socket.id, socket);
        this.#sessionOf.set(socket, state.session);
      }
      this.#helloedCache = all;
    }
    return this.#helloedCache;
  }

  /** The session of each socket in #helloed() (read from its state once, not on every look-up). */
  #sessionOf = new WeakMap<WebSocket, string>();

  // While a BATCH is served, what it sends waits in the outbox and leaves as
  // one BATCH message per socket at its end (see outbox.ts).
  #outbox = new Outbox();

  protected send(socket: Connection, message: Message): void {
    this.emit(socket, encodeFrame(message));
  }

  /** Sends one encoded frame, or keeps it for the end of the batch being served. */
  protected emit(socket: WebSocket, frame: Uint8Array): void {
    this.#outbox.send(socket, frame);
  }

  protected sendError(socket: Connection, id: number, code: ErrorCode, message: string): void {
    this.send(socket, [Msg.ERROR, id, code, message]);
  }

  // Sockets whose messages this instance has served. partyserver's
  // webSocketMessage first checks that a socket is one of its own by
  // deserializing its attachment, on every message: once per socket and
  // instance is enough (a probe of the pipe round trip put that check at
  // about a tenth of the object's CPU time).
  #served = new WeakSet<WebSocket>();

  async webSocketMessage(ws: WebSocket, message: WSMessage): Promise<void> {
    if (!this.#served.has(ws)) return super.webSocketMessage(ws, message);
    try {
      await this.onMessage(ws as Socket, message);
    } catch (error) {
      console.error("sharevars: webSocketMessage", error);
    }
  }

  async onMessage(socket: Socket, message: WSMessage): Promise<void> {
    // Ended here already (superseded by a newer socket of its session): what
    // still arrives on it is not served (a GET would lease an item to it for good).
    if (this.#ended.has(socket)) return;
    this.#served.add(socket);
    if (typeof message === "string") {
      return this.sendError(socket, 0, ErrorCode.BAD_FRAME, "frames are binary CBOR, not text");
    }
    const size = message.byteLength;
    if (size > Limits.MAX_FRAME_BYTES) {
      return this.sendError(socket, 0, ErrorCode.FRAME_TOO_LARGE, `a frame is limited to ${Limits.MAX_FRAME_BYTES} bytes (got ${size})`);
    }
    let frame: unknown;
    try {
      frame = decodeFrame(message as ArrayBuffer);
    } catch {
      return this.sendError(socket, 0, ErrorCode.BAD_FRAME, "not a CBOR frame");
    }
    if (!Array.isArray(frame) || frame[0] !== Op.BATCH) return this.#serve(socket, frame);
    const frames = frame[2];
    if (!Array.isArray(frames) || frames.length > Limits.MAX_BATCH_FRAMES || !frames.every((f) => f instanceof Uint8Array)) {
      return this.sendError(socket, 0, ErrorCode.BAD_FRAME, `a BATCH is [${Op.BATCH}, 0, [frame, ...]] with up to ${Limits.MAX_BATCH_FRAMES} encoded frames`);
    }
    const outer = this.#outbox.open();
    try {
      for (const bytes of frames as Uint8Array[]) {
        let inner: unknown;
        try {
          inner = decodeFrame(bytes);
        } catch {
          this.sendError(socket, 0, ErrorCode.BAD_FRAME, "not a CBOR frame");
          continue;
        }
        if (Array.isArray(inner) && inner[0] === Op.BATCH) {
          this.sendError(socket, 0, ErrorCode.BAD_FRAME, "a BATCH does not nest");
          continue;
        }
        await this.#serve(socket, inner);
        // A refused HELLO closed the socket, or the object ended it: nothing
        // after that in the batch is served, as no later message is. Not a
        // socket the far end closed meanwhile: its later messages are served
        // (see onMessage), and the writes skipped here would be below a write
        // stored after them, which the handle's next HELLO reports as applied.
        if (this.#ended.has(socket) || (!socket.state && socket.readyState !== WebSocket.READY_STATE_OPEN)) break;
      }
    } finally {
      if (outer) this.#outbox.close();
    }
  }

  /** Serves one decoded request frame. */
  async #serve(socket: Socket, frame: unknown): Promise<void> {
    if (!Array.isArray(frame) || typeof frame[0] !== "number" || !isRequestId(frame[1])) {
      return this.sendError(socket, 0, ErrorCode.BAD_FRAME, "a request is [op, id, ...arguments] with a non-negative integer id");
    }
    const op = frame[0];
    const id = frame[1];
    try {
      if (op === Op.HELLO) return await this.#hello(socket, id, frame[2]);
      const state = socket.state;
      if (!state) throw new ProtocolError(ErrorCode.NOT_READY, "send HELLO first");
      // Its token expired before the alarm ended it (see tokenTimes): nothing
      // more is served (what the batch was sent so far goes out first).
      if (state.expires !== undefined && Date.now() >= state.expires) {
        this.#outbox.flush(socket);
        return await this.#end(socket, CloseCode.TOKEN_EXPIRED, TOKEN_EXPIRED);
      }
      await this.handle(socket, state, op, id, frame);
    } catch (error) {
      const known = error instanceof ProtocolError;
      if (!known) console.error("sharevars: internal error", error);
      const [code, message] = known ? [error.code, error.message] : [ErrorCode.INTERNAL, "internal error"];
      if (WRITES.has(op)) this.#refused(socket, id, code, message);
      this.sendError(socket, id, code, message);
      // A HELLO that failed on this side (not for its arguments, which the
      // sender may correct on the same socket) is closed: a library that had
      // been connected reconnects, backing off, rather than wait on it.
      const closeCode = known ? error.closeCode : op === Op.HELLO && !socket.state ? CloseCode.HELLO_FAILED : undefined;
      if (closeCode !== undefined) {
        // What this socket was sent in the batch so far (this error included) goes out before the close.
        this.#outbox.flush(socket);
        socket.close(closeCode, code);
      }
    }
  }

  /** Remembers a refused write for its session (see sessions.ts): its error reply may be lost. */
  #refused(socket: Socket, id: number, code: ErrorCode, message: string): void {
    const session = socket.state?.session;
    // Applied, then something after it failed: not a refusal (its HELLO reports it applied).
    if (session === undefined || this.sessions.recorded(session, id)) return;
    try {
      this.sessions.refuse(session, id, code, message);
    } catch (error) {
      console.error("sharevars: could not remember a refused write", error);
    }
  }

  /** Serves one operation; a subclass handles its own and passes the rest here. */
  protected async handle(socket: Socket, state: SocketState, op: number, id: number, frame: unknown[]): Promise<void> {
    switch (op) {
      case Op.DICT_SET:
      case Op.DICT_DELETE:
      case Op.DICT_CLEAR:
      case Op.DICT_UPDATE:
        return this.#dictWrite(socket, state, id, parseDictWrite(op, frame));
      case Op.PUT: {
        const fifo = this.fifoName(frame[2], frame[3], state.role, "send");
        const value = frame[4];
        if (!(value instanceof Uint8Array)) throw new ProtocolError(ErrorCode.BAD_ARGUMENT, "PUT takes an encoded value");
        this.putItem(fifo, value, () => {
          this.sessions.record(state.session, id);
          this.send(socket, [Msg.REPLY, id, null]);
        });
        return;
      }
      case Op.GET: {
        const fifo = this.fifoName(frame[2], frame[3], state.role, "receive");
        if (typeof frame[4] !== "boolean") throw new ProtocolError(ErrorCode.BAD_ARGUMENT, "GET takes a wait flag");
        const receiver = { socket: socket.id, session: state.session };
        // (After a CANCEL that came too late, its item comes back first: see late-cancels.ts.)
        const item = this.#lateCancels.holds(socket.id, fifo) ? null : this.fifo.take(fifo, receiver);
        if (item) {
          this.#lateCancels.delivered(socket.id, id, fifo, item.seq);
          return this.send(socket, [Msg.REPLY, id, [item.seq, item.value]]);
        }
        if (!frame[4]) return this.send(socket, [Msg.REPLY, id, null]);
        if (this.fifo.waitsOf(socket.id) >= Limits.MAX_WAITS) {
          throw new ProtocolError(ErrorCode.TOO_MANY_WAITS, `a connection may have ${Limits.MAX_WAITS} receives waiting at once`);
        }
        if (this.fifo.waiting >= this.maxWaits) {
          throw new ProtocolError(ErrorCode.TOO_MANY_WAITS, `this object has ${this.maxWaits} receives waiting at once; try again`);
        }
        this.fifo.wait(fifo, receiver, id);
        return this.#armAlarm();
      }
      case Op.ACK: {
        const quiet = frame[3];
        if (quiet !== undefined && typeof quiet !== "boolean") throw new ProtocolError(ErrorCode.BAD_ARGUMENT, "ACK takes item numbers and an optional quiet flag");
        const seqs = parseSeqs(frame[2]);
        const acked = this.fifo.ack(state.session, seqs);
        if (!quiet) this.send(socket, [Msg.REPLY, id, acked]);
        for (const fifo of this.#lateCancels.settled(socket.id, seqs)) this.serveWaiters(fifo);
        return;
      }
      case Op.RELEASE: {
        const seqs = parseSeqs(frame[2]);
        const fifos = this.fifo.release(state.session, seqs);
        this.send(socket, [Msg.REPLY, id, fifos.length]);
        for (const fifo of new Set([...fifos, ...this.#lateCancels.settled(socket.id, seqs)])) this.serveWaiters(fifo);
        return;
      }
      case Op.CANCEL: {
        const get = frame[2];
        if (!isRequestId(get)) throw new ProtocolError(ErrorCode.BAD_ARGUMENT, "CANCEL takes the id of a GET");
        const waiting = this.fifo.cancel(socket.id, get);
        if (waiting) this.send(socket, [Msg.REPLY, get, null]);
        else this.#lateCancels.cancelled(socket.id, get, (seq) => this.fifo.leasedTo(state.session, seq, socket.id));
        return this.send(socket, [Msg.REPLY, id, waiting]);
      }
      case Op.SIZE:
        return this.send(socket, [Msg.REPLY, id, this.fifo.size(this.fifoName(frame[2], frame[3], state.role, "receive"))]);
      case Op.AUTH: {
        // A renewed token. One refused changes nothing (the socket does not
        // close for it, as at HELLO): the socket ends when its token does.
        let life: TokenLife | undefined;
        try {
          life = await this.authorize(state.role, state.id, frame[2]);
        } catch (error) {
          throw error instanceof ProtocolError ? new ProtocolError(error.code, error.message) : error;
        }
        // Nor does one that expires no later than the one in force: the same
        // token again (a fixed token's library answers RENEW with it: taken,
        // its renewal time, past, would ask again at once, a RENEW/AUTH loop
        // until the expiry), or an older one (an AUTH replayed after a reconnect).
        if (life && (state.expires === undefined || life.expires > state.expires)) {
          socket.setState({ ...socket.state!, ...life });
          await this.#tokenAlarm(life.renewAt);
        }
        return this.send(socket, [Msg.REPLY, id, null]);
      }
      default:
        throw new ProtocolError(ErrorCode.UNKNOWN_OP, `unknown operation ${op}`);
    }
  }

  /** The HTTP API (the worker entry checked the server token). */
  async onRequest(request: Request): Promise<Response> {
    // What HTTP shows (who is online, the inspector's receivers) counts no dead sockets.
    if (Date.now() - this.#swept >= SILENT_SWEEP_MS) await this.endSilent();
    return handleHttp(this, request, this.httpClients());
  }

  /** What GET /clients lists, a page at a time (space object only). */
  protected httpClients(): ((offset: number, limit: number) => ClientsPage) | undefined {
    return undefined;
  }

  /** Runs once per instance, before any event: leases of sockets lost in a restart are released. */
  async onStart(): Promise<void> {
    // One pass over the sockets rather than a lookup per stored socket id.
    const open = new Set<string>();
    for (const socket of this.getConnections()) open.add(socket.id);
    const held = this.fifo.reclaim((s) => open.has(s));
    if (held.length === 0) return;
    for (const fifo of held) this.serveWaiters(fifo);
    await this.#armAlarm();
  }

  // Sockets whose end this instance has handled: an error that ended a socket
  // is handled as its close, and a close event may still follow it.
  #ended = new WeakSet<WebSocket>();

  // Sockets open on this object, HELLO'd or not: counted from the runtime's
  // list on the first connect after each wake, then kept by connect and close.
  #socketCount: number | null = null;

  /**
   * Every socket counts against the object's connections from its open, not
   * only once it said HELLO: sockets that never say it could otherwise fill
   * the object. One over the limit has its HELLO refused (the error the
   * library reports) and is closed after OVER_LIMIT_HELLO_MS if none comes;
   * any other that says nothing within HELLO_TIMEOUT_MS is closed.
   */
  async onConnect(socket: Socket): Promise<void> {
    this.#opened.set(socket, ++this.#opens);
    this.#socketCount = (this.#socketCount ?? this.ctx.getWebSockets().length - 1) + 1;
    // Over the limit, count again: a socket that ended without a close event
    // (an error on a closing socket) would otherwise hold its place for good.
    if (this.#socketCount > this.maxConnections) {
      this.#socketCount = 0;
      for (const ws of this.ctx.getWebSockets()) {
        if (ws.readyState === WebSocket.READY_STATE_OPEN) this.#socketCount++;
        else this.#uncounted.add(ws); // its close event, if one comes, is not counted out again
      }
    }
    const over = this.#socketCount > this.maxConnections;
    if (over) this.#overLimit.add(socket);
    // Cleared by the HELLO (a pending timer keeps the object from hibernating).
    this.#helloTimers.set(socket, setTimeout(() => {
      this.#helloTimers.delete(socket);
      if (socket.state || socket.readyState !== WebSocket.READY_STATE_OPEN) return;
      if (!over) return socket.close(CloseCode.HELLO_TIMEOUT, "no HELLO in time");
      // (A library on a slow link learns why from the close code, if its HELLO is still on the way.)
      this.sendError(socket, 0, ErrorCode.TOO_MANY_CONNECTIONS, this.#tooMany);
      socket.close(CloseCode.TOO_MANY_CONNECTIONS, this.#tooMany);
    }, over ? OVER_LIMIT_HELLO_MS : HELLO_TIMEOUT_MS));
  }

  #helloTimers = new Map<WebSocket, ReturnType<typeof setTimeout>>();
  /** The order in which sockets opened on this instance (see #newerOfSession). */
  #opened = new WeakMap<WebSocket, number>();
  #opens = 0;
  /** Sockets that opened over the connection limit (their HELLO is refused). */
  #overLimit = new WeakSet<WebSocket>();
  /** Sockets a recount left out (closing then). */
  #uncounted = new WeakSet<WebSocket>();

  get #tooMany(): string {
    return `this object takes at most ${this.maxConnections} connections`;
  }

  /** Sockets whose HELLO is being authorized now. */
  #authorizing = new WeakSet<WebSocket>();

  /**
   * The open socket other than `except` that has waited longest for its
   * HELLO: one that sent none before one whose HELLO is being authorized
   * (the owner that sent it would be shut out in favour of a silent socket).
   */
  #oldestSilent(except: WebSocket): WebSocket | undefined {
    let checking: WebSocket | undefined;
    for (const ws of this.#helloTimers.keys()) {
      if (ws === except || ws.readyState !== WebSocket.READY_STATE_OPEN) continue;
      if (!this.#authorizing.has(ws)) return ws;
      checking ??= ws;
    }
    return checking;
  }

  #helloDone(socket: WebSocket): void {
    const timer = this.#helloTimers.get(socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#helloTimers.delete(socket);
  }

  async onClose(socket: Socket, code?: number): Promise<void> {
    if (this.#ended.has(socket)) return;
    this.#ended.add(socket);
    if (this.#socketCount !== null && !this.#uncounted.has(socket)) this.#socketCount--;
    this.#helloDone(socket);
    this.#helloedCache?.delete(socket.id);
    this.#lateCancels.forget(socket.id);
    const state = socket.state;
    if (!state) return;
    const held = this.fifo.socketClosed(socket.id, state.session, Date.now(), code === CloseCode.SESSION_ENDED);
    if (held.length > 0) {
      for (const fifo of held) this.serveWaiters(fifo);
      await this.#armAlarm();
    }
    this.left(socket, state);
  }

  async onError(socket: Socket, error: unknown): Promise<void> {
    this.#helloedCache = null; // rebuilt on next use, with this socket if it is still there
    console.error("sharevars: socket error", error);
    // One that ended the socket may come without a close event: its waits
    // end and what it was given is held for its session, as on a close.
    if (socket.readyState !== WebSocket.READY_STATE_OPEN) await this.onClose(socket);
  }

  /** A hold on an item ended (the waiters it kept waiting may take it now), or a client token is due (see tokenTimes). */
  async onAlarm(): Promise<void> {
    for (const fifo of this.fifo.waitedOn()) this.serveWaiters(fifo);
    if (Date.now() >= this.#tokensDue) this.#tokensDue = (await this.tokenTimes()) ?? Infinity;
    await this.#armAlarm(this.#tokensDue);
  }

  /**
   * When tokenTimes next has something to do (Infinity: no socket has a
   * token), as far as this instance knows: 0 until its first pass. A pass
   * reads every socket's attachment; this keeps hold alarms from making one.
   */
  #tokensDue = 0;

  /** A socket's token is due at `at` (see tokenTimes): the alarm comes by then. */
  async #tokenAlarm(at: number): Promise<void> {
    this.#tokensDue = Math.min(this.#tokensDue, at);
    await this.#armAlarm(at);
  }

  /**
   * Token mode: a socket lives as long as its client token. Ends the sockets
   * whose token expired (TOKEN_EXPIRED: the library reconnects with a new
   * token), asks those whose token expires soon for a new one (RENEW, once
   * per token, which the library answers with AUTH on the same socket, so the
   * client stays online), and returns when to look next. Sockets due for RENEW within half
   * their lead time are asked in the same pass, so that the alarm wakes the
   * object about once per half minute for renewals, not once per socket.
   */
  async tokenTimes(now = Date.now()): Promise<number | undefined> {
    let next: number | undefined;
    for (const socket of [...this.#helloed().values()]) {
      const { expires, renewAt } = socket.state ?? {};
      if (expires === undefined || renewAt === undefined) continue;
      if (now >= expires) {
        await this.#end(socket, CloseCode.TOKEN_EXPIRED, TOKEN_EXPIRED);
        continue;
      }
      const asked = now >= renewAt - (expires - renewAt) / 2;
      if (asked) this.#askRenewal(socket, expires);
      const at = asked ? expires : renewAt;
      if (next === undefined || at < next) next = at;
    }
    return next;
  }

  /**
   * Sends RENEW, once per token: its renewal time moves to its expiry, so
   * that later passes (other sockets' times) do not ask again before it
   * (a fixed token's library answers each RENEW with an AUTH to check).
   */
  #askRenewal(socket: Socket, expires: number): void {
    try {
      this.send(socket, [Msg.RENEW]);
      socket.setState({ ...socket.state!, renewAt: expires });
    } catch {
      // closing: its close event ends it
    }
  }

  /**
   * Checks and stores one item on `fifo`; `stored` runs before any waiter is
   * served (so a put's reply precedes the deliveries it causes).
   */
  putItem(fifo: string, value: Uint8Array, stored?: () => void): void {
    const limits = this.limits;
    checkValue(value, limits);
    const stats = this.fifo.stats(fifo);
    if (stats.items >= limits.MAX_ITEMS_PER_CHANNEL || stats.bytes + value.byteLength > limits.MAX_BYTES_PER_CHANNEL) {
      throw new ProtocolError(ErrorCode.QUEUE_FULL, `a queue or pipe holds at most ${limits.MAX_ITEMS_PER_CHANNEL} items and ${limits.MAX_BYTES_PER_CHANNEL} bytes; take some first`);
    }
    const delivery = this.fifo.put(fifo, value, (s) => this.#presence(s, fifo), this.#offer);
    try {
      stored?.();
    } finally {
      // (Even if the put's reply failed: the item is stored, maybe leased to a waiter already.)
      if (delivery) this.#deliver(fifo, [delivery]);
      else this.serveWaiters(fifo);
    }
  }

  /** Serves the waiters of `fifo` (sockets' receives and HTTP takes), first come first served. */
  serveWaiters(fifo: string): void {
    this.#deliver(fifo, this.fifo.serve(fifo, (s) => this.#presence(s, fifo), this.#offer));
  }

  /** A waiting HTTP take answers the item leased to it as it is served (see Fifo.Offer); a socket's goes out in #deliver. */
  #offer = (waiter: Waiter, item: Item): boolean => this.#httpTakes.offer(waiter.socket, item);

  // GETs whose CANCEL came after they were served (see late-cancels.ts);
  // what they hold back is kept with the socket, like its waits.
  #lateCancels = new LateCancels({
    load: () => {
      const all: [string, Held][] = [];
      for (const socket of this.#helloed().values()) {
        const held = socket.state?.held;
        if (held) all.push([socket.id, held]);
      }
      return all;
    },
    save: (id, held) => {
      const socket = this.#helloed().get(id);
      const state = socket?.state;
      if (!socket || !state) return;
      let bytes = 0;
      for (const [fifo, seqs] of held) bytes += fifo.length + 8 * seqs.length;
      const { held: _, ...rest } = state;
      const fits = held.length > 0 && held.length <= ATTACHED_HELD && bytes <= ATTACHED_HELD_BYTES;
      if (!fits && !state.held) return;
      try {
        socket.setState(fits ? { ...rest, held } : rest);
      } catch {
        socket.setState(rest); // too large for an attachment after all: kept in memory only
      }
    },
  });

  #httpTakes = new HttpTakes(() => this.fifo, () => this.#armAlarm(), (fifo) => this.serveWaiters(fifo));

  /** Takes the head of `fifo` for an HTTP caller, answering with `respond` (see http.ts). */
  takeForHttp(fifo: string, waitMs: number, leaseMs: number, respond: (value: Uint8Array, receipt?: string) => Response): Promise<Response | null> {
    return this.#httpTakes.take(fifo, waitMs, leaseMs, respond);
  }

  ackForHttp(fifo: string, receipt: string): boolean {
    return this.#httpTakes.ack(fifo, receipt);
  }

  releaseForHttp(fifo: string, receipt: string): boolean {
    const released = this.#httpTakes.release(fifo, receipt);
    if (released) this.serveWaiters(fifo);
    return released;
  }

  /** What the inspector shows of this object: its dict and its queues and pipes with their lengths. */
  summary(): ObjectSummary {
    const page = this.dict.page(undefined, SUMMARY_KEYS, SUMMARY_BYTES);
    const dict = page.entries.map(([key, value]): [string, string] => {
      let decoded: unknown;
      try {
        decoded = decodeValue(value);
      } catch {
        return [key, "(not shown: cannot be decoded)"]; // stored unchecked by an earlier version
      }
      return [key, preview(decoded)];
    });
    const channels = this.fifo.lengths(SUMMARY_CHANNELS + 1);
    return {
      version: this.dict.version, keys: this.dict.size, dict, truncated: page.more,
      channels: channels.slice(0, SUMMARY_CHANNELS), moreChannels: channels.length > SUMMARY_CHANNELS,
    };
  }

  /** Wakes the object when the earliest hold that someone waits behind ends, or at `at` (a token's time) if that is earlier. */
  async #armAlarm(at = Infinity): Promise<void> {
    const end = Math.min(this.fifo.nextHoldEnd() ?? Infinity, at);
    if (end === Infinity) return;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > end) await this.ctx.storage.setAlarm(end);
  }

  /**
   * Whether waiter `socketId` of `fifo` (a HELLO'd socket or a waiting HTTP
   * take) is there, and may be served now (see Presence).
   */
  #presence(socketId: string, fifo: string): boolean | null {
    if (this.#httpTakes.isWaiting(socketId)) return true;
    const socket = this.#helloed().get(socketId);
    if (socket?.readyState !== WebSocket.READY_STATE_OPEN) return false;
    if (this.#silent(socket)) {
      // Taken for dead: its waits end here, and its end is handled once this delivery is done.
      queueMicrotask(() => void this.#end(socket, CloseCode.SILENT, SILENT_REASON));
      return false;
    }
    return this.#lateCancels.holds(socketId, fifo) ? null : true;
  }

  #deliver(fifo: string, deliveries: Delivery[]): void {
    for (const { socket, request, item } of deliveries) {
      const connection = this.#helloed().get(socket);
      if (!connection) continue; // (an HTTP take's: answered as it was served)
      this.#lateCancels.delivered(socket, request, fifo, item.seq);
      try {
        this.emit(connection, encodeFrame([Msg.REPLY, request, [item.seq, item.value]]));
      } catch (error) {
        // Closing: its close holds the item for its session. The others are served on.
        console.error("sharevars: a send failed", error);
      }
    }
  }

  /** The FIFO a role sends to or receives from. A pipe is one FIFO per direction. */
  fifoName(kind: unknown, name: unknown, role: Role, direction: "send" | "receive"): string {
    if (kind !== "pipe" && kind !== "queue") throw new ProtocolError(ErrorCode.BAD_ARGUMENT, "a channel is a pipe or a queue");
    const bad = checkName(name, `a ${kind} name`);
    if (bad) throw new ProtocolError(ErrorCode.BAD_ARGUMENT, bad);
    if (kind === "queue") return `queue:${name}`;
    if (!this.hasPipes) throw new ProtocolError(ErrorCode.BAD_ARGUMENT, "pipes belong to one client: there are no global pipes");
    const upstream = (role === "client") === (direction === "send");
    return `pipe:${upstream ? "up" : "down"}:${name}`;
  }

  async #hello(socket: Socket, id: number, hello: unknown): Promise<void> {
    if (socket.state) throw new ProtocolError(ErrorCode.BAD_ARGUMENT, "HELLO was already accepted on this socket");
    const args = parseHello(hello);
    if (args.v !== PROTOCOL_VERSION) {
      throw new ProtocolError(ErrorCode.PROTOCOL_VERSION, `this worker speaks protocol ${PROTOCOL_VERSION}, the library ${args.v}`, CloseCode.PROTOCOL_VERSION);
    }
    const { role, clientId } = SharedObject.roleOf(socket);
    // Dead sockets give up their places (and their clients' stays online) first.
    if (Date.now() - this.#swept >= SILENT_SWEEP_MS) await this.endSilent();
    this.#authorizing.add(socket);
    let life: TokenLife | undefined;
    try {
      life = await this.authorize(role, clientId, args.token);
    } finally {
      this.#authorizing.delete(socket);
    }
    // It closed while the token was checked: its close was handled already, without a state.
    if (socket.readyState !== WebSocket.READY_STATE_OPEN) return;
    // A socket of its session that opened after it joined meanwhile: this
    // one is the stale one (its handle gave it up and opened that one), and
    // it is the one that ends, not the newer.
    if (this.#newerOfSession(socket, args.session)) {
      socket.close(1000, SUPERSEDED);
      return;
    }
    let open = 0;
    for (const _ of this.sockets()) open++;
    // One that opened over the limit may have found room since (others closed).
    if (this.#overLimit.has(socket) && this.#socketCount !== null && this.#socketCount <= this.maxConnections) this.#overLimit.delete(socket);
    if (open >= this.maxConnections) {
      throw new ProtocolError(ErrorCode.TOO_MANY_CONNECTIONS, this.#tooMany, CloseCode.TOO_MANY_CONNECTIONS);
    }
    if (this.#overLimit.has(socket)) {
      // The places are held by sockets that have not said HELLO, which anyone
      // may open (credentials come in HELLO): this one, authorized, takes the
      // place of the oldest, so silent sockets cannot lock the object's owners out.
      const silent = this.#oldestSilent(socket);
      if (!silent) throw new ProtocolError(ErrorCode.TOO_MANY_CONNECTIONS, this.#tooMany, CloseCode.TOO_MANY_CONNECTIONS);
      this.#overLimit.delete(socket);
      this.#helloDone(silent);
      this.sendError(silent as Socket, 0, ErrorCode.TOO_MANY_CONNECTIONS, this.#tooMany);
      this.#outbox.flush(silent);
      silent.close(CloseCode.TOO_MANY_CONNECTIONS, this.#tooMany);
    }
    const state: SocketState = role === "server" ? { role, session: args.session } : { role, id: clientId, session: args.session, ...life };

    // Everything that reads storage comes before the socket takes its state:
    // should any of it fail, the socket has not joined, and is closed (see #serve).
    // Nothing awaits from here on, so no other event comes in between.
    const snapshot = this.dict.snapshot(args.since);
    let step = snapshot.next();
    while (!step.done) {
      this.send(socket, [Msg.SNAPSHOT, id, step.value]);
      step = snapshot.next();
    }
    const result: HelloResult = {
      version: step.value.version,
      full: step.value.full,
      lastSeq: this.sessions.lastSeq(args.session),
      limits: this.limits,
      ...this.helloExtras(state),
    };
    // Refusals whose ERROR may have been lost go again, ahead of the reply.
    const { refused, forgotten } = this.sessions.refusals(args.session, args.pending);
    for (const [seq, code, message] of refused) this.sendError(socket, seq, code as ErrorCode, message);
    if (forgotten) result.refusalsForgotten = forgotten;

    socket.setState(state);
    this.#helloDone(socket);
    this.#helloedCache?.set(socket.id, socket);
    this.#sessionOf.set(socket, state.session);
    try {
      this.joined(socket, state); // (what it tells others comes last, and cannot fail)
    } catch (error) {
      // Not joined after all: back to before its HELLO, and closed (by #serve).
      socket.setState(null as never);
      this.#helloedCache?.delete(socket.id);
      if (error instanceof ProtocolError && !error.closeCode) throw new ProtocolError(error.code, error.message, CloseCode.HELLO_FAILED);
      throw error;
    }
    this.send(socket, [Msg.REPLY, id, result]);
    await this.#supersede(socket, state.session);
    if (life) {
      // (A token already due for renewal is asked for at once.)
      const due = Date.now() >= life.renewAt;
      if (due) this.#askRenewal(socket, life.expires);
      await this.#tokenAlarm(due ? life.expires : life.renewAt);
    }
  }

  /**
   * A handle opens a new socket only once its old one ended on its side, but
   * the object may see that one open for a while yet (a dead link's close
   * comes late). Until it did, what was delivered there and never reached
   * the handle stayed leased to it: the session's replayed receives passed it
   * by and got later items first, and its waits there took items nobody
   * would see. So a HELLO ends the session's other sockets as if they had
   * closed: their waits end and their items are held for the session.
   */
  async #supersede(socket: Socket, session: string): Promise<void> {
    for (const other of [...this.#helloed().values()]) {
      if (other !== socket && this.#sessionOf.get(other) === session) await this.#end(other, 1000, SUPERSEDED);
    }
  }

  /** Closes a HELLO'd socket and handles its end at once (its close event may come late, or never). */
  async #end(socket: Socket, code: number, reason: string): Promise<void> {
    try {
      socket.close(code, reason);
    } catch {
      // closing already
    }
    try {
      await this.onClose(socket);
    } catch (error) {
      console.error("sharevars: ending a socket", error);
    }
    // Its end was handled: its close event, should it come after a
    // hibernation (which forgets #ended), finds no state and does nothing again.
    try {
      socket.setState(null as never);
    } catch {
      // closed already
    }
  }

  /** When a HELLO or an HTTP request last looked for silent sockets (see SILENT_SWEEP_MS). */
  #swept = 0;

  /** Whether `socket` pinged and then fell silent (see SILENT_MS). */
  #silent(socket: WebSocket, now = Date.now()): boolean {
    const pinged = this.ctx.getWebSocketAutoResponseTimestamp(socket);
    return pinged !== null && now - pinged.getTime() > SILENT_MS;
  }

  /** Ends every HELLO'd socket that fell silent; returns how many. */
  async endSilent(now = Date.now()): Promise<number> {
    this.#swept = now;
    let ended = 0;
    for (const socket of [...this.#helloed().values()]) {
      if (!this.#silent(socket, now)) continue;
      await this.#end(socket, CloseCode.SILENT, SILENT_REASON);
      ended++;
    }
    return ended;
  }

  /** Whether a socket of `session` that opened after `socket` (on this instance) has joined. */
  #newerOfSession(socket: Socket, session: string): boolean {
    const mine = this.#opened.get(socket);
    if (mine === undefined) return false;
    for (const other of this.#helloed().values()) {
      if (other === socket || other.readyState !== WebSocket.READY_STATE_OPEN) continue;
      if ((this.#opened.get(other) ?? 0) > mine && this.#sessionOf.get(other) === session) return true;
    }
    return false;
  }

  #dictWrite(socket: Socket, state: SocketState, id: number, write: DictWrite): void {
    this.writeDict(write, socket.id, (applied) => {
      this.sessions.record(state.session, id);
      this.send(socket, [Msg.REPLY, id, applied.version]);
    });
  }

  /**
   * Checks and applies a dict write, and sends the change to every socket
   * but `origin`; `stored` runs first (a write's record and reply: once
   * applied, nothing that fails after it may report it refused). A send that
   * fails (a socket closing) skips that socket only: its close follows.
   */
  writeDict(write: DictWrite, origin?: string, stored?: (applied: AppliedWrite) => void): AppliedWrite {
    const rows = this.dict.check(write, this.limits);
    const applied = this.dict.apply(write, rows);
    try {
      stored?.(applied);
    } finally {
      // (Even if its writer's reply failed: the others' replicas follow the object.)
      if (applied.changed) this.#sendChange(applied, origin);
    }
    return applied;
  }

  #sendChange(applied: AppliedWrite, origin?: string): void {
    const change = encodeFrame([Msg.CHANGE, applied.version, applied.entries, applied.cleared]);
    for (const other of this.#helloed().values()) {
      if (other.readyState !== WebSocket.READY_STATE_OPEN || other.id === origin) continue;
      try {
        this.emit(other, change);
      } catch (error) {
        console.error("sharevars: a send failed", error);
      }
    }
  }

}
