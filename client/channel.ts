// Pipes and queues on the client-library side: one end of a durable FIFO on
// an object (see worker/fifo.ts). `Pipe` names its operations send/recv,
// `Queue` put/get; both wait the same way and never swallow an item.
//
// A pipe end receives ahead: once the application has taken an item, the
// next receive leaves with that item's acknowledgement (usually in the same
// message as what the application sends next), so a conversation costs one
// message per turn instead of two. The item it brings waits in the handle for
// the next recv(); size() counts it, and close() hands it back at once. One
// that no recv() takes within AHEAD_IDLE_MS is withdrawn; one that came on a
// socket since closed is left to the object, which held it for this session.
// A recv() that times out or is aborted stops this until the next one that
// takes an item. Queues do not: an item there goes to whichever getter asks.
import { decodeValue, encodeValue } from "./codec.js";
import type { Connection } from "./connection.js";
import { ClosedError, TimeoutError } from "./errors.js";
import { after, checkDelay } from "./delays.js";
import { checkName, OP_GET, OP_PUT, OP_RELEASE, OP_SIZE, type ChannelKind, type WireItem } from "./protocol.js";

export interface WaitOptions {
  /** Milliseconds to wait; rejects with a TimeoutError after it. 0: do not wait. Default: wait forever. */
  timeout?: number;
  /** Abort the wait (rejects with the signal's reason). */
  signal?: AbortSignal;
}

/** How often a timed-out wait still waiting for the object's answer to its CANCEL looks whether it went offline. */
const CANCEL_GRACE_MS = 1000;

/**
 * A receive sent ahead that no recv() takes within this time is withdrawn
 * (and an item it brought handed back): another receiver of the same pipe
 * end (a second handle with the same client id, another server process)
 * then gets what comes next.
 */
const AHEAD_IDLE_MS = 1000;

/** A pipe's receive sent ahead of the application's next recv(). */
interface Ahead {
  connection: Connection;
  id: number;
  reply: Promise<WireItem | null>;
  /** The item, once it arrived (in hand until a recv() takes it), and the socket it came on (see Connection.socketNumber). */
  item?: WireItem;
  socket?: number;
  idle: ReturnType<typeof setTimeout>;
}

/**
 * Gives an item nobody will take here back to the object (RELEASE), for the
 * next receiver. (Not after a reconnect: the object held it for this session
 * meanwhile, for its next receive; see RequestKind.)
 */
function handBack(connection: Connection, [seq]: WireItem): void {
  connection.unhold(seq);
  connection.request((id) => [OP_RELEASE, id, [seq]], "release").catch(() => {});
}

/** The item a receive ahead brought (if any), if it is still this handle's (it came on the current socket). */
function inHand(ahead: Ahead | null): WireItem | undefined {
  return ahead?.item && ahead.socket === ahead.connection.socketNumber ? ahead.item : undefined;
}

class ChannelEnd {
  readonly #connection: () => Connection;
  readonly #kind: ChannelKind;
  readonly name: string;
  /** The receive sent ahead (pipes only; see the top of this file). */
  #ahead: Ahead | null = null;
  /** The application's receives under way. */
  #receiving = 0;

  /** @internal */
  constructor(connection: () => Connection, kind: ChannelKind, name: string) {
    this.#connection = connection;
    this.#kind = kind;
    this.name = name;
  }

  #open(): Connection {
    const connection = this.#connection();
    if (connection.closed) throw new ClosedError(`the ${this.#kind} ${JSON.stringify(this.name)} is closed`);
    return connection;
  }

  /** Stores one item; resolves once it is durable on the edge. */
  protected async putItem(value: unknown): Promise<void> {
    const connection = this.#open();
    const bytes = encodeValue(value, undefined, connection.limits.MAX_VALUE_BYTES);
    const kind = this.#kind;
    const name = this.name;
    await connection.request((id) => [OP_PUT, id, kind, name, bytes], "write");
  }

  /** Takes the next item, waiting for one as `options` allow. */
  protected async takeItem(options: WaitOptions = {}): Promise<any> {
    const { timeout, signal } = options;
    if (timeout !== undefined) checkDelay(timeout, "timeout");
    signal?.throwIfAborted();
    const connection = this.#open();
    const kind = this.#kind;
    const name = this.name;
    const what = `the ${kind} ${JSON.stringify(name)}`;
    let ahead = this.#ahead?.connection === connection ? this.#ahead : null;
    this.#ahead = null;
    if (ahead) {
      clearTimeout(ahead.idle);
      const item = inHand(ahead);
      if (item) {
        // Taken now, before anything else this turn (a close() right after
        // this call must not hand it back too).
        const value = this.#accept(connection, item);
        this.#receiveAhead(connection);
        return value;
      }
      // An item that came on an earlier socket is held for this session at
      // the object: a new receive gets it.
      if (ahead.item) ahead = null;
    }

    // Without a receive ahead, a poll asks for an item without waiting; with
    // one, it is that receive, cancelled at once unless its item is here.
    // Offline after a connection (not before the first: a peer opens its
    // connection on first use) a poll goes the way of a timeout below and
    // rejects at once, instead of waiting for the reconnect.
    if (timeout === 0 && !ahead && (connection.status === "open" || !connection.socketNumber)) {
      const item = (await connection.request((id) => [OP_GET, id, kind, name, false])) as WireItem | null;
      if (item === null) throw new TimeoutError(`${what} is empty`); // (as a timeout of 0 below)
      return this.#accept(connection, item);
    }

    if (ahead) connection.hurry();
    const { id: getId, reply } = ahead ?? this.#waitingGet(connection, false);
    this.#receiving++;

    return new Promise((resolve, reject) => {
      let settled = false;
      let timedOut: TimeoutError | null = null;
      let grace: ReturnType<typeof setTimeout> | undefined;
      const finish = () => {
        settled = true;
        this.#receiving--;
        clearTimeout(timer);
        clearTimeout(grace);
        signal?.removeEventListener("abort", onAbort);
      };
      // Giving up at once: the object drops the waiter, or, if the item was
      // already on its way, it comes back here and is handed back (RELEASE).
      // Offline (after a timeout's CANCEL too, when the connection dropped
      // before the answer) the wait is forgotten instead: see Connection.cancel.
      const giveUp = (error: unknown) => {
        if (settled) return;
        finish();
        reject(error);
        connection.cancel(getId);
      };
      const onAbort = () => giveUp(signal!.reason);
      // A timeout asks the object first: if the item left before the CANCEL
      // arrived, it is this wait's and is taken (the wait ends one round trip
      // late). Handing it back instead would let a receiver whose round trip
      // exceeds its timeout see items come and go forever and never get one.
      // Offline it gives up at once, and so it does if the connection drops
      // before the answer (a slow but open link is waited for: giving up there
      // would bring back the endless hand-back).
      const onTimeout = () => {
        const error = new TimeoutError(timeout ? `nothing arrived on ${what} within ${timeout} ms` : `${what} is empty`);
        if (connection.status !== "open") return giveUp(error);
        timedOut = error;
        connection.cancel(getId);
        const check = () => {
          if (connection.status === "open") grace = setTimeout(check, CANCEL_GRACE_MS);
          else giveUp(error);
        };
        grace = setTimeout(check, CANCEL_GRACE_MS);
      };
      const timer = timeout === undefined ? undefined : after(timeout, onTimeout);
      signal?.addEventListener("abort", onAbort, { once: true });

      reply.then(
        (item) => {
          if (settled) {
            if (item !== null) handBack(connection, item);
            return;
          }
          finish();
          if (item === null) return reject(timedOut ?? new ClosedError(`the wait on ${what} was cancelled`));
          try {
            resolve(this.#accept(connection, item));
            if (!timedOut) this.#receiveAhead(connection);
          } catch (error) {
            reject(error);
          }
        },
        (error) => {
          if (settled) return;
          finish();
          reject(error);
        },
      );
    });
  }

  #accept(connection: Connection, [seq, bytes]: WireItem): any {
    connection.unhold(seq);
    connection.ack(seq);
    return decodeValue(bytes);
  }

  /** A pipe end that just took an item sends its next receive with that item's acknowledgement. */
  #receiveAhead(connection: Connection): void {
    if (this.#kind !== "pipe" || this.#ahead || this.#receiving > 0 || connection.closed) return;
    const { id, reply } = this.#waitingGet(connection, true);
    const idle = setTimeout(() => {
      if (this.#ahead !== ahead) return;
      this.#ahead = null;
      this.#withdraw(ahead);
    }, AHEAD_IDLE_MS);
    (idle as { unref?: () => void }).unref?.(); // it alone does not keep a Node process alive
    const ahead: Ahead = { connection, id, reply, idle };
    this.#ahead = ahead;
    reply.then(
      (item) => {
        if (item === null || this.#ahead !== ahead) return; // taken by a recv() or withdrawn meanwhile, which handle it
        ahead.item = item;
        ahead.socket = connection.socketNumber;
        connection.hold(item[0]);
      },
      () => {
        if (this.#ahead === ahead) this.#ahead = null; // the handle closed
      },
    );
  }

  /** Sends a GET that waits (riding along, for a receive ahead); returns its id and reply. */
  #waitingGet(connection: Connection, rides: boolean): { id: number; reply: Promise<WireItem | null> } {
    const kind = this.#kind;
    const name = this.name;
    let id = 0;
    const reply = connection.request((i) => {
      id = i;
      return [OP_GET, i, kind, name, true];
    }, "read", rides) as Promise<WireItem | null>;
    return { id, reply };
  }

  /** Withdraws a receive sent ahead: the object drops it, or hands back the item it brought. */
  #withdraw({ connection, id: getId, reply }: Ahead): void {
    connection.cancel(getId);
    reply.then((item) => item !== null && handBack(connection, item), () => {});
  }

  /** How many items wait to be received at this end (an item already in this handle included). */
  async size(): Promise<number> {
    const kind = this.#kind;
    const name = this.name;
    const waiting = (await this.#open().request((id) => [OP_SIZE, id, kind, name])) as number;
    return waiting + (inHand(this.#ahead) ? 1 : 0);
  }
}

/** One end of a pipe: what this end sends, only the other end receives, in order. */
export class Pipe extends ChannelEnd {
  /** Sends `value` to the other end; resolves once it is durably stored. */
  send(value: unknown): Promise<void> {
    return this.putItem(value);
  }

  /** Receives the next value the other end sent, waiting for it. */
  recv(options?: WaitOptions): Promise<any> {
    return this.takeItem(options);
  }
}

/** A queue: one FIFO that every end puts to and gets from; each item goes to one getter. */
export class Queue extends ChannelEnd {
  /** Puts `value` at the end of the queue; resolves once it is durably stored. */
  put(value: unknown): Promise<void> {
    return this.putItem(value);
  }

  /** Takes the item at the head, waiting for one. */
  get(options?: WaitOptions): Promise<any> {
    return this.takeItem(options);
  }
}

/** `pipes["name"]` / `queues["name"]`: every name is a channel, created on first use. */
export type Channels<T> = { readonly [name: string]: T };

export function channels<T extends ChannelEnd>(make: (name: string) => T): Channels<T> {
  const cache = new Map<string, T>();
  return new Proxy(Object.create(null) as Channels<T>, {
    get(_target, name) {
      if (typeof name !== "string") return undefined;
      let channel = cache.get(name);
      if (!channel) {
        const problem = checkName(name, "a channel name");
        if (problem) throw new TypeError(problem);
        cache.set(name, (channel = make(name)));
      }
      return channel;
    },
    set() {
      throw new TypeError("pipes and queues are created by using them: pipes[name].send(value)");
    },
  });
}

export function pipesOf(connection: () => Connection): Channels<Pipe> {
  return channels((name) => new Pipe(connection, "pipe", name));
}

export function queuesOf(connection: () => Connection): Channels<Queue> {
  return channels((name) => new Queue(connection, "queue", name));
}
