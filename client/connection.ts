// One logical connection to one Durable Object: a reconnecting WebSocket
// (socket.ts), the HELLO handshake on every (re)connect, and request/reply
// matching by id.
//
// A request stays in `#inflight` until its reply arrives, across reconnects:
// after each HELLO the owner reconciles its state (`onReady`), then every
// request still in flight is sent again: acknowledgements first (so a
// replayed GET cannot receive an item this handle already has), then the
// rest in id order. Writes the object had already applied (id <= lastSeq)
// are settled instead of sent twice.
//
// Requests made in one turn leave together: one BATCH message (one storage
// transaction on the object) instead of one message each. Acknowledgements,
// and requests made to ride along with them (a pipe's next receive), wait for
// the next request, or for a timer.
import { after } from "./delays.js";
import { ReconnectingSocket } from "./socket.js";
import { CLOSE_SESSION_ENDED, CLOSE_TOKEN_EXPIRED, CLOSE_TOO_MANY_CONNECTIONS, decodeFrame, encodeFrame, ErrorCode, Limits, MSG_BATCH, MSG_ERROR, MSG_RENEW, MSG_REPLY, MSG_SNAPSHOT, OP_ACK, OP_AUTH, OP_BATCH, OP_CANCEL, OP_HELLO, OP_RELEASE, PROTOCOL_VERSION, type Hello, type HelloResult, type LimitsInForce, type Message, type Request, type WireEntry } from "./protocol.js";
import { AuthError, ClosedError, LimitError, errorFromWire, type SharevarsError } from "./errors.js";
import type { TokenSource } from "./tokens.js";

export type Status = "connecting" | "open" | "closed";

export interface ConnectionOptions {
  url: string;
  /** Fields of each HELLO beyond the protocol version, session and token. */
  hello: () => Omit<Hello, "v" | "session" | "token">;
  /** The token of each HELLO (see tokens.ts): the source is asked again for one the object found spent. */
  token: TokenSource;
  /** A snapshot chunk of the HELLO under way. */
  onSnapshot: (entries: WireEntry[]) => void;
  /** HELLO accepted; runs before requests in flight are sent again. */
  onReady: (result: HelloResult) => void;
  /** Messages that are not replies (CHANGE, CLIENT_ONLINE, ...). */
  onMessage: (message: Message) => void;
  onStatus?: (status: Status) => void;
  /** How long the first connection may take. */
  connectTimeout?: number;
}

/**
 * How a request is replayed after a reconnect: a write is skipped if the
 * object applied it already; an ack goes first; a read is simply sent again.
 * A release (handing back an item that came on the socket of its time) is
 * not: once that socket closed, the object held the item for this session,
 * and this session's next receive may already have it again on the new
 * socket (a RELEASE sent there would put it back in line: received twice).
 * It resolves with 0 instead.
 */
export type RequestKind = "read" | "write" | "ack" | "release";

/** Told a request's outcome when its reply is matched, before its promise settles (see `request`). */
export type OnReply = (value: unknown, error: SharevarsError | null) => void;

interface Inflight {
  frame: Uint8Array<ArrayBuffer>;
  kind: RequestKind;
  resolve: (value: unknown) => void;
  reject: (error: SharevarsError) => void;
  onReply?: OnReply;
  /** A write's promise (see writesSettled). */
  promise?: Promise<unknown>;
  /** Handed to a socket at least once (made while ready, or sent again after a HELLO). */
  sent?: boolean;
}

/** How often an open socket pings (see socket.ts): a link that died without a close is found within three times this. */
const HEARTBEAT_MS = 20_000;

/** Settles a request: its onReply first, then its promise. */
function end(request: Inflight, value: unknown, error: SharevarsError | null): void {
  request.onReply?.(value, error);
  if (error) request.reject(error);
  else request.resolve(value);
}

/** A write whose reply will never come: the object applied or refused it, and which is not known. */
const outcomeUnknown = () => errorFromWire(ErrorCode.OUTCOME_UNKNOWN, "its reply was lost: it may have been applied");

function randomSession(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Connection {
  readonly session = randomSession();
  readonly ready: Promise<HelloResult>;
  #options: ConnectionOptions;
  #socket: ReconnectingSocket;
  #nextId = 1;
  #helloId = 0;
  #isReady = false;
  #limits: LimitsInForce = Limits; // the defaults (a superset of the tunable ones) until HELLO
  #status: Status = "connecting";
  #inflight = new Map<number, Inflight>();
  #acks: number[] = [];
  /** Frames of requests that ride with the next acknowledgement or request (see `request`). */
  #riders: Uint8Array<ArrayBuffer>[] = [];
  #ackTimer: ReturnType<typeof setTimeout> | undefined;
  /** Items received ahead of the application (a pipe's next item) and not yet taken: handed back at close. */
  #inHand = new Set<number>();
  /** Sockets whose HELLO succeeded (0: never ready yet). */
  #sockets = 0;
  /** Ids of ACK requests sent quiet (no reply), ascending, until a later request's reply shows them stored. */
  #quietAcks: number[] = [];
  #outbox: Uint8Array<ArrayBuffer>[] = [];
  /** ERRORs that came before the HELLO reply (see #onMessage). */
  #early: [number, SharevarsError][] = [];
  #closedWith: SharevarsError | null = null;
  #closing = false;
  #settleReady!: { resolve: (r: HelloResult) => void; reject: (e: SharevarsError) => void };

  constructor(options: ConnectionOptions) {
    const timeout = options.connectTimeout ?? 15_000; // (checked by the handle's token source: see tokens.ts)
    this.#options = options;
    this.ready = new Promise((resolve, reject) => (this.#settleReady = { resolve, reject }));
    // Reconnects back off, with jitter (socket.ts); the first open is immediate.
    this.#socket = new ReconnectingSocket(options.url, {
      open: () => this.#onOpen(),
      message: (data) => this.#onData(data),
      close: (code, reason) => this.#onClose(code, reason),
    }, HEARTBEAT_MS);
    // (Cleared once ready; #fail ignores a handle closed meanwhile.) Its
    // rejection handler also keeps a failed `ready` from being unhandled: the
    // owner reports it through its own promise.
    const timer = after(timeout, () => this.#fail(new ClosedError(`could not connect to ${options.url} within ${timeout} ms`)));
    this.ready.then(() => clearTimeout(timer), () => clearTimeout(timer));
  }

  get status(): Status {
    return this.#status;
  }

  /** The limits the worker announced (the protocol's until the first HELLO reply). */
  get limits(): LimitsInForce {
    return this.#limits;
  }

  /** Closed, or closing: what the application asks now is refused (what it asked before still goes). */
  get closed(): boolean {
    return this.#closedWith !== null || this.#closing;
  }

  /** close() began on the handle, which waits for its writes: see `closed`. */
  closing(): void {
    this.#closing = true;
  }

  /**
   * Counts the sockets whose HELLO succeeded. An item received ahead on an
   * earlier socket is no longer this handle's: when that socket closed, the
   * object held it for this handle's session, and gives it to the session's
   * next receive.
   */
  get socketNumber(): number {
    return this.#sockets;
  }

  /**
   * Sends a request (now, or after the next HELLO) and resolves with its
   * reply. A request that `rides` leaves with the next acknowledgement or
   * request of this handle, or on the acknowledgement timer, rather than
   * in a message of its own (`hurry` sends it at once).
   *
   * `onReply` learns the outcome as the reply is matched, in the order the
   * object sent its messages: a dict replica must apply the confirmation of
   * its write before a later CHANGE that came in the same chunk, which a
   * promise's reaction (a microtask later) would not.
   */
  request(build: (id: number) => Request, kind: RequestKind = "read", rides = false, onReply?: OnReply): Promise<unknown> {
    if (this.#closedWith) return Promise.reject(this.#closedWith);
    const id = this.#nextId++;
    const frame = encodeFrame(build(id));
    if (frame.byteLength > Limits.MAX_FRAME_BYTES) {
      return Promise.reject(new LimitError(ErrorCode.FRAME_TOO_LARGE, `a frame is limited to ${Limits.MAX_FRAME_BYTES} bytes (this one has ${frame.byteLength})`));
    }
    const promise = new Promise((resolve, reject) => {
      this.#inflight.set(id, { frame, kind, resolve, reject, onReply, sent: this.#isReady });
      if (!this.#isReady) return; // sent after the next HELLO
      if (!rides) {
        if (this.#outbox.push(frame) === 1) queueMicrotask(() => this.#flush());
      } else if (this.#riders.push(frame) === 1 && this.#acks.length === 0) {
        this.#ackTimer = setTimeout(() => this.#flush(), 0);
      }
    });
    if (kind === "write") this.#inflight.get(id)!.promise = promise;
    return promise;
  }

  /** Resolves once every write now in flight has its outcome (or the handle closed). */
  async writesSettled(): Promise<void> {
    await Promise.allSettled([...this.#inflight.values()].map((request) => request.promise));
  }

  /**
   * Ends the waiting GET `get`. Offline that is forgetting it: the object
   * ended the wait with its socket, and holds an item it sent there for this
   * session's next receive. Sent again, the wait would take that item ahead
   * of the next receive and hand it back behind it, out of order.
   */
  cancel(get: number): void {
    if (this.#isReady) this.request((id) => [OP_CANCEL, id, get]).catch(() => {});
    else this.#inflight.delete(get);
  }

  /** Sends the requests waiting to ride along now (someone waits for their replies). */
  hurry(): void {
    // (With frames in the outbox, a flush is already on its way and takes them along.)
    if (this.#riders.length > 0 && this.#outbox.length === 0) queueMicrotask(() => this.#flush());
  }

  /** Item `seq` was received ahead of the application: handed back (RELEASE) if the handle closes before it is taken. */
  hold(seq: number): void {
    this.#inHand.add(seq);
  }

  /** Item `seq` was taken by the application (or handed back). */
  unhold(seq: number): void {
    this.#inHand.delete(seq);
  }

  close(): void {
    // What this handle asked for so far still leaves, acknowledgements
    // included; items received ahead of the application go back (RELEASE)
    // for the next receiver at once; receives riding along are dropped.
    if (this.#isReady) {
      this.#riders = [];
      if (this.#inHand.size > 0) this.request((id) => [OP_RELEASE, id, [...this.#inHand]]).catch(() => {});
      this.#flush();
    }
    this.#fail(new ClosedError());
  }

  /** Sends the requests of this turn: alone, or as BATCH messages; acks go first, then the requests riding along. */
  #flush(): void {
    clearTimeout(this.#ackTimer);
    if (this.#riders.length > 0) this.#outbox.unshift(...this.#riders.splice(0));
    if (this.#acks.length > 0) this.#drainAcks();
    const frames = this.#outbox;
    if (frames.length === 0) return;
    this.#outbox = [];
    if (!this.#isReady) return; // still in #inflight: sent again after the next HELLO
    let start = 0;
    let bytes = 0;
    for (let i = 0; i <= frames.length; i++) {
      const size = i < frames.length ? frames[i].byteLength : 0;
      if (i === frames.length || (i > start && (i - start >= Limits.MAX_BATCH_FRAMES || bytes + size > Limits.BATCH_BYTES))) {
        this.#socket.send(i - start === 1 ? frames[start] : encodeFrame([OP_BATCH, 0, frames.slice(start, i)]));
        start = i;
        bytes = 0;
      }
      bytes += size;
    }
  }

  #setStatus(status: Status): void {
    if (this.#status === status) return;
    this.#status = status;
    this.#options.onStatus?.(status);
  }

  #fail(error: SharevarsError): void {
    if (this.#closedWith) return;
    this.#closedWith = error;
    this.#isReady = false;
    // (#outbox and #riders are empty: close() flushed them, and nothing else
    // fails a ready connection. Acknowledgements left are never sent: what
    // they acknowledge goes back with the session.)
    clearTimeout(this.#ackTimer);
    this.#socket.close(CLOSE_SESSION_ENDED);
    this.#settleReady.reject(error);
    const inflight = [...this.#inflight.values()];
    this.#inflight.clear();
    // A write this handle sent ends with its outcome unknown, not as if it had
    // never been made: it may be stored. One never sent fails with `error`.
    for (const request of inflight) end(request, undefined, request.kind === "write" && request.sent ? outcomeUnknown() : error);
    this.#setStatus("closed");
  }

  /** The token of this socket's HELLO (or of its last AUTH). */
  #token: string | undefined;
  /** Whether the token source's function was called for this HELLO's token (see MSG_ERROR). */
  #fresh: boolean | undefined;
  /**
   * A token the object refused, or ended a socket for (it expired): each
   * HELLO until one succeeds asks the source for another, and a fresh one
   * refused, or the spent one given again, ends the handle.
   */
  #spent: string | undefined;

  /** Says HELLO once the token is in; rejects if the token function failed (the socket is given up, and the next asks again: see socket.ts). */
  #onOpen(): Promise<void> {
    // (Taken before the token is: a socket opened meanwhile takes the next, and this open is stale.)
    const helloId = (this.#helloId = this.#nextId++);
    return this.#options.token(this.#spent).then(([value, called]) => {
      if (this.#closedWith || helloId !== this.#helloId) return;
      this.#fresh = called;
      this.#token = value;
      const hello: Hello = { ...this.#options.hello(), v: PROTOCOL_VERSION, session: this.session, token: value };
      // The oldest write whose outcome is unknown (ids grow in #inflight's order).
      for (const [id, request] of this.#inflight) {
        if (request.kind !== "write") continue;
        hello.pending = id;
        break;
      }
      this.#socket.send(encodeFrame([OP_HELLO, helloId, hello]));
    });
  }

  #onClose(code: number, reason: string): void {
    this.#isReady = false;
    this.#early = []; // told again at the next HELLO
    this.#outbox = []; // every request in it (and in #riders) is in #inflight
    this.#riders = [];
    if (this.#closedWith) return;
    if (code === CLOSE_TOKEN_EXPIRED) this.#spent = this.#token;
    // (The final close codes, UNAUTHORIZED, FORBIDDEN and PROTOCOL_VERSION,
    // follow the HELLO's ERROR, which ended the handle already: see MSG_ERROR.)
    // One connection too many (before its HELLO was answered): a first connect fails with it.
    if (code === CLOSE_TOO_MANY_CONNECTIONS && this.#sockets === 0) {
      this.#fail(new LimitError(ErrorCode.TOO_MANY_CONNECTIONS, reason));
      return;
    }
    this.#setStatus("connecting");
  }

  #onData(data: unknown): void {
    if (!(data instanceof ArrayBuffer)) return;
    let message: Message;
    try {
      message = decodeFrame(data) as Message;
      if (message[0] === MSG_BATCH) {
        for (const frame of message[1]) this.#onMessage(decodeFrame(frame) as Message);
        return;
      }
    } catch {
      return; // an object never sends a malformed frame; nothing to act on
    }
    this.#onMessage(message);
  }

  #onMessage(message: Message): void {
    switch (message[0]) {
      case MSG_SNAPSHOT:
        if (message[1] === this.#helloId) this.#options.onSnapshot(message[2]);
        return;
      case MSG_REPLY:
        if (message[1] === this.#helloId) return this.#onHello(message[2] as HelloResult);
        return this.#settle(message[1], message[2], null);
      case MSG_ERROR: {
        const error = errorFromWire(message[2], message[3]);
        if (!this.#isReady) {
          // Refusals told again ahead of the HELLO reply (worker/sessions.ts): settled
          // once the snapshot is in, so that a reverted write shows the object's value.
          if (message[1] !== this.#helloId) this.#early.push([message[1], error]);
          // The HELLO's own: refused credentials end the handle, unless the
          // token was got before this HELLO (it may have expired since: one
          // that Client.connect got, on a slow first connect; one got for a
          // HELLO that a dropped link cut off) and is not one found spent
          // already: the next HELLO asks the token source for another, which a
          // function gives (a fixed token is refused once more). Anything else
          // only fails a first connect (a reconnect keeps trying: the object
          // closes the socket, which backs off).
          else if (!this.#fresh && this.#token !== this.#spent && error instanceof AuthError) this.#spent = this.#token;
          else if (this.#sockets === 0 || error instanceof AuthError || error.code === ErrorCode.PROTOCOL_VERSION) this.#fail(error);
          return;
        }
        return this.#settle(message[1], undefined, error);
      }
      case MSG_RENEW: {
        // The socket's token expires soon: a new one goes on the same socket.
        // None by the expiry (or one refused): the socket closes then, and the
        // reconnect asks the source again.
        this.#options.token(this.#token).then(([value]) => this.request((id) => [OP_AUTH, id, (this.#token = value)!])).catch(() => {});
        return;
      }
      default:
        this.#options.onMessage(message);
    }
  }

  #onHello(result: HelloResult): void {
    this.#spent = undefined;
    if (result.limits) this.#limits = result.limits;
    this.#sockets++;
    this.#socket.helloed();
    this.#inHand.clear(); // see socketNumber
    this.#options.onReady(result);
    for (const [id, error] of this.#early.splice(0)) this.#settle(id, undefined, error);
    this.#drainAcks(); // not ready yet: into #inflight, replayed first just below
    this.#isReady = true;
    const inflight = [...this.#inflight];
    for (const [, request] of inflight) {
      if (request.kind === "ack") this.#socket.send(request.frame);
    }
    // A write the object refused failed already (it sends those ERRORs again
    // before this reply; see worker/sessions.ts); one at or below lastSeq was
    // applied, unless its refusal may have been forgotten; the rest go again.
    const [first, last] = result.refusalsForgotten ?? [];
    for (const [id, request] of inflight) {
      if (request.kind === "ack") continue;
      if (request.kind === "release") {
        this.#inflight.delete(id);
        end(request, 0, null);
      } else if (request.kind === "write" && id <= result.lastSeq) {
        this.#inflight.delete(id);
        end(request, undefined, id >= first! && id <= last! ? outcomeUnknown() : null);
      } else {
        request.sent = true;
        this.#socket.send(request.frame);
      }
    }
    // Open only now: what a status listener asks goes out once, behind the replayed requests.
    this.#setStatus("open");
    this.#settleReady.resolve(result);
  }

  /**
   * Acknowledges a received item. Acks ride with the next requests of this
   * handle (one message, one transaction) or leave on a timer; until then the
   * item stays leased to this handle, so nobody else can get it.
   */
  ack(seq: number): void {
    if (this.#acks.push(seq) > 1 || this.#riders.length > 0) return;
    this.#ackTimer = setTimeout(() => this.#flush(), 0);
  }

  #drainAcks(): void {
    clearTimeout(this.#ackTimer);
    while (this.#acks.length > 0) {
      const batch = this.#acks.splice(0, Limits.MAX_ACK_BATCH);
      const id = this.#nextId++;
      // Quiet: no reply of its own (one frame less each way, and no BATCH for a
      // lone reply); a reply to any later request settles it (see #settle).
      const frame = encodeFrame([OP_ACK, id, batch, true]);
      this.#inflight.set(id, { frame, kind: "ack", resolve: () => {}, reject: () => {} });
      this.#quietAcks.push(id);
      // In front of this turn's requests: an ack never waits behind them.
      if (this.#isReady && this.#outbox.unshift(frame) === 1) queueMicrotask(() => this.#flush());
    }
  }

  #settle(id: number, value: unknown, error: SharevarsError | null): void {
    // A quiet ACK with a smaller id was sent before request `id` (acks are
    // sent first: in front of their turn's requests and of replays), so the
    // object served it first, and this reply left only once it was stored.
    const acks = this.#quietAcks;
    while (acks.length > 0 && acks[0] < id) this.#inflight.delete(acks.shift()!);
    const request = this.#inflight.get(id);
    if (!request) return;
    this.#inflight.delete(id);
    end(request, value, error);
  }
}
