// What the handles on one shared dict have in common (`client`,
// `client.globals`, `server`): the dict as a live view, its change events
// beside the handle's own, sync, and the handle's queues with the default
// queue's put/get. Written once: every member here is also a reserved name
// of each handle (see proxy.ts).
import { queuesOf, type Channels, type Queue, type WaitOptions } from "./channel.js";
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
