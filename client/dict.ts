// SharedDict: the Map-like live view of one shared dict (`client.dict`,
// `client.globals.dict`, `server.dict`, `peer.dict`). It owns the replica and
// turns calls into writes on the object's connection.
import { decodeValue, encodeValue } from "./codec.js";
import { Emitter } from "./emitter.js";
import { ClosedError, LimitError, NotReadyError, type SharevarsError } from "./errors.js";
import { checkKey, ErrorCode, Limits, OP_DICT_CLEAR, OP_DICT_DELETE, OP_DICT_SET, OP_DICT_UPDATE, type LimitsInForce } from "./protocol.js";
import { Replica, type LocalWrite } from "./replica.js";
import type { Connection } from "./connection.js";

/** What `on("change")` listeners receive for every change applied to the replica. */
export interface ChangeEvent {
  key: string;
  /** The new value (a fresh copy), undefined when deleted. */
  value: unknown;
  deleted: boolean;
}

type DictEvents = { change: [ChangeEvent] };

/** Bytes a DICT_UPDATE frame may spend on entries, leaving room for framing. */
const UPDATE_BATCH_BYTES = Limits.MAX_FRAME_BYTES - 16 * 1024;

export class SharedDict implements Iterable<[string, any]> {
  readonly #label: string;
  readonly #events = new Emitter<DictEvents>();
  readonly #replica: Replica;
  #connection: Connection | null = null;
  #inflight = new Set<Promise<void>>();
  #failures: SharevarsError[] = [];

  /** `label` names the dict in errors ("alice's dict", "the global dict"). */
  constructor(label: string) {
    this.#label = label;
    // Each listener gets a value of its own (values read are copies).
    this.#replica = new Replica((key, bytes) => this.#events.emitEach("change", () => [bytes === undefined
      ? { key, value: undefined, deleted: true }
      : { key, value: decodeValue(bytes), deleted: false }]));
  }

  // --- wiring to the object's connection (used by the handles, not by users) ---

  /** @internal */
  attach(connection: Connection): void {
    this.#connection = connection;
  }

  /** @internal The replica, which the connection feeds (see wiring.ts). */
  get replica(): Replica {
    return this.#replica;
  }

  #limits(): LimitsInForce {
    return this.#connection?.limits ?? Limits;
  }

  // --- reads (synchronous, from the replica) ---

  #view(): ReadonlyMap<string, Uint8Array> {
    if (!this.#replica.loaded) throw new NotReadyError(`${this.#label} is not loaded yet: await its handle's ready first`);
    return this.#replica.view;
  }

  /** Every entry as it is now, in the object's key order (iteration: the same on every side). */
  #entries(): [string, Uint8Array][] {
    this.#view();
    return this.#replica.ordered;
  }

  get(key: string): any {
    const bytes = this.#view().get(key);
    return bytes === undefined ? undefined : decodeValue(bytes);
  }

  has(key: string): boolean {
    return this.#view().has(key);
  }

  get size(): number {
    return this.#view().size;
  }

  keys(): IterableIterator<string> {
    return this.#entries().map(([key]) => key).values();
  }

  *values(): IterableIterator<any> {
    for (const [, bytes] of this.#entries()) yield decodeValue(bytes);
  }

  *entries(): IterableIterator<[string, any]> {
    for (const [key, bytes] of this.#entries()) yield [key, decodeValue(bytes)];
  }

  [Symbol.iterator](): IterableIterator<[string, any]> {
    return this.entries();
  }

  forEach(callback: (value: any, key: string, dict: SharedDict) => void): void {
    for (const [key, value] of this.entries()) callback(value, key, this);
  }

  /** A plain object with a copy of every entry. */
  toObject(): Record<string, any> {
    // (fromEntries defines each key: one named "__proto__" is an own key, not the prototype.)
    return Object.fromEntries(this.entries());
  }

  toJSON(): Record<string, any> {
    return this.toObject();
  }

  // --- writes (visible at once, durable after sync()) ---

  set(key: string, value: unknown): this {
    // The same checks and the same one-entry write (a single set is sent as DICT_SET).
    return this.update([[key, value]]);
  }

  /** Deletes `key`; returns whether it was there. */
  delete(key: string): boolean {
    this.#checkKey(key);
    if (!this.#view().has(key)) return false;
    this.#write({ kind: "delete", key });
    return true;
  }

  clear(): void {
    this.#view();
    this.#write({ kind: "clear" });
  }

  /** Sets every entry of `entries` (an object, a Map or [key, value] pairs), atomically per batch of up to 1000 keys (and about 1 MiB encoded). */
  update(entries: Record<string, unknown> | Map<string, unknown> | Iterable<readonly [string, unknown]>): this {
    // (A Map is iterable.) As for a Map, each pair is an object: a string
    // (or a list of keys) is refused, not read as keys with undefined values.
    const pairs: any[] = Symbol.iterator in Object(entries) ? [...(entries as Iterable<unknown>)] : Object.entries(entries);
    const encoded = pairs.map((pair): [string, Uint8Array] => {
      if (Object(pair) !== pair) throw new TypeError("update takes [key, value] pairs");
      return [pair[0], this.#encodeEntry(pair[0], pair[1])];
    });
    const view = this.#view();
    const added = new Set(encoded.map(([key]) => key).filter((key) => !view.has(key))).size;
    const max = this.#limits().MAX_KEYS_PER_DICT;
    if (view.size + added > max) {
      throw new LimitError(ErrorCode.TOO_MANY_KEYS, `${this.#label} is limited to ${max} keys`);
    }
    let batch: [string, Uint8Array][] = [];
    let bytes = 0;
    for (const entry of encoded) {
      const size = entry[0].length * 3 + entry[1].byteLength + 16;
      if (batch.length > 0 && (batch.length >= Limits.MAX_UPDATE_ENTRIES || bytes + size > UPDATE_BATCH_BYTES)) {
        this.#write({ kind: "set", entries: batch });
        batch = [];
        bytes = 0;
      }
      batch.push(entry);
      bytes += size;
    }
    if (batch.length > 0) this.#write({ kind: "set", entries: batch });
    return this;
  }

  /** Removes `key` and returns its value, or `fallback` when it is absent. */
  pop(key: string, fallback?: unknown): any {
    if (!this.has(key)) return fallback;
    const value = this.get(key);
    this.delete(key);
    return value;
  }

  /** Returns the value of `key`, setting it to `value` first if absent. */
  setdefault(key: string, value?: unknown): any {
    if (!this.has(key)) this.set(key, value);
    return this.get(key);
  }

  /**
   * Resolves once every write made so far is durable on the edge. Rejects
   * with the first error if the object refused any write since the last
   * sync() (a refused write disappears from the replica).
   */
  async sync(): Promise<void> {
    await Promise.all([...this.#inflight]);
    const failure = this.#failures[0];
    this.#failures = [];
    if (failure) throw failure;
  }

  on(event: "change", listener: (change: ChangeEvent) => void): () => void {
    return this.#events.on(event, listener);
  }

  off(event: "change", listener: (change: ChangeEvent) => void): void {
    this.#events.off(event, listener);
  }

  #checkKey(key: unknown): asserts key is string {
    const bad = checkKey(key);
    if (!bad) return;
    if (bad.code === ErrorCode.BAD_ARGUMENT) throw new TypeError(bad.message);
    throw new LimitError(bad.code, bad.message);
  }

  #encodeEntry(key: string, value: unknown): Uint8Array {
    this.#checkKey(key);
    return encodeValue(value, key, this.#limits().MAX_VALUE_BYTES);
  }

  #write(write: LocalWrite): void {
    const connection = this.#connection;
    if (!connection || connection.closed) throw new ClosedError(`${this.#label} is closed`);
    let seq = 0;
    const reply = connection.request((id) => {
      seq = id;
      if (write.kind === "clear") return [OP_DICT_CLEAR, id];
      if (write.kind === "delete") return [OP_DICT_DELETE, id, write.key];
      if (write.entries.length === 1) return [OP_DICT_SET, id, write.entries[0][0], write.entries[0][1]];
      return [OP_DICT_UPDATE, id, write.entries];
    }, "write", false, (version, error) => {
      // As the reply is matched (see Connection.request), not a microtask later.
      if (error) {
        this.#replica.reject(seq);
        this.#failures.push(error);
      } else if (typeof version === "number") {
        this.#replica.confirm(seq, version);
      }
    });
    this.#replica.write(seq, write);
    const outcome = reply.then(() => {}, () => {});
    this.#inflight.add(outcome);
    outcome.finally(() => this.#inflight.delete(outcome));
  }
}
