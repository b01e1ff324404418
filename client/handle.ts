// What the handles on one shared dict have in common (`client`,
// `client.globals`, `server`, a client peer): the dict as a live view, its
// change events beside the handle's own, sync, and the handle's queues with
// the default queue's put/get; and, for the two ends of a client's pipes
// (`client`, a client peer), the pipes with the default pipe's send/recv.
// Written once: every member here is also a reserved name of each handle
// (see proxy.ts).
import { pipesOf, queuesOf, type Channels, type Pipe, type Queue, type WaitOptions } from "./channel.js";
import type { Connection } from "./connection.js";
import type { ChangeEvent, SharedDict } from "./dict.js";
import { Emitter } from "./emitter.js";
import { inspectSymbol } from "./proxy.js";

export type DictEvents = { change: [ChangeEvent] };

export class DictHandle<Events extends DictEvents & Record<string, unknown[]> = DictEvents> {
  [key: string]: any;
  #dict: SharedDict;
  #queues: Channels<Queue>;
  #events: Emitter<Events>;

  /** @internal `events` carries the handle's own events (all but "change"), which the subclass emits. */
  constructor(dict: SharedDict, connection: () => Connection, events = new Emitter<Events>()) {
    this.#dict = dict;
    this.#queues = queuesOf(connection);
    this.#events = events;
  }

  /** The dict as a Map-like live view (reaches any key, reserved names too). */
  get dict(): SharedDict {
    return this.#dict;
  }

  /** Queues by name: a client's own (shared with the server only), or the space's global ones. */
  get queues(): Channels<Queue> {
    return this.#queues;
  }

  /** `queues["default"].put(value)`: resolves once the item is durably stored. */
  put(value: unknown): Promise<void> {
    return this.#queues["default"].put(value);
  }

  /** `queues["default"].get(options)`: takes the head of the queue, waiting for one as `options` allow. */
  get(options?: WaitOptions): Promise<any> {
    return this.#queues["default"].get(options);
  }

  // "change" has a signature of its own, the same on every handle: a union
  // of handle types (`isServer ? server : client.globals`) can call on/off
  // only with a signature all its members share (never a generic one).
  /** "change": every change applied to the dict; the other events are the handle's own. */
  on(event: "change", listener: (change: ChangeEvent) => void): () => void;
  on<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): () => void;
  on(event: string | number | symbol, listener: (...args: any[]) => void): () => void {
    // "change" is the dict's own (one order for these and .dict's listeners).
    return (event === "change" ? this.#dict : this.#events).on(event as "change", listener as never);
  }

  off(event: "change", listener: (change: ChangeEvent) => void): void;
  off<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): void;
  off(event: string | number | symbol, listener: (...args: any[]) => void): void {
    (event === "change" ? this.#dict : this.#events).off(event as "change", listener as never);
  }

  /** Resolves when every write to the dict so far is durable on the edge. */
  sync(): Promise<void> {
    return this.#dict.sync();
  }

  toJSON(): Record<string, any> {
    return this.#dict.toObject();
  }

  // Node's console shows the dict. (Node inspects a proxy's target, and
  // calls this on the proxy, which has no private fields: public members only.)
  [inspectSymbol](): unknown {
    return this.toJSON();
  }
}

/** A handle on one end of a client's pipes: `client`, or the server's peer of that client. */
export class PipeEnd<Events extends DictEvents & Record<string, unknown[]> = DictEvents> extends DictHandle<Events> {
  #pipes: Channels<Pipe>;

  /** @internal The pipes go over the same connection as the queues. */
  constructor(dict: SharedDict, connection: () => Connection, events?: Emitter<Events>) {
    super(dict, connection, events);
    this.#pipes = pipesOf(connection);
  }

  /** The pipes between the client and the server, by name: what one end sends, only the other receives. */
  get pipes(): Channels<Pipe> {
    return this.#pipes;
  }

  /** Sends `value` to the other end on the default pipe; resolves once it is durably stored. */
  send(value: unknown): Promise<void> {
    return this.#pipes["default"].send(value);
  }

  /** Receives the next value the other end sent on the default pipe. */
  recv(options?: WaitOptions): Promise<any> {
    return this.#pipes["default"].recv(options);
  }
}
