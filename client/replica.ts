// A dict replica: the object's confirmed state with this handle's own pending
// writes on top. Reads are local and synchronous; the object orders all
// writes, and every replica converges to that order:
//   view = pending writes folded, in order, over the confirmed state.
// Values are kept encoded: a read decodes a fresh copy, so mutating what a
// read returned never changes the replica (nested values are copies).
import type { WireEntry } from "./protocol.js";

export type LocalWrite =
  | { kind: "set"; entries: [string, Uint8Array][] }
  | { kind: "delete"; key: string }
  | { kind: "clear" };

interface Pending {
  seq: number;
  write: LocalWrite;
}

/** Called for every key whose visible value changed (undefined: deleted). */
export type ChangeSink = (key: string, value: Uint8Array | undefined) => void;

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function applyTo(map: Map<string, Uint8Array>, write: LocalWrite): void {
  if (write.kind === "clear") map.clear();
  else if (write.kind === "delete") map.delete(write.key);
  else for (const [key, value] of write.entries) map.set(key, value);
}

export class Replica {
  /** Whether a snapshot has been loaded. */
  loaded = false;
  #confirmed = new Map<string, Uint8Array>();
  #version = 0;
  #pending: Pending[] = [];
  #view = new Map<string, Uint8Array>();
  #incoming: WireEntry[] = [];
  #sink: ChangeSink;

  constructor(sink: ChangeSink) {
    this.#sink = sink;
  }

  /** The visible state: confirmed plus pending writes. */
  get view(): ReadonlyMap<string, Uint8Array> {
    return this.#view;
  }

  /**
   * The visible entries in the object's key order, which every replica
   * shares once it has no pending writes: the pending writes folded over the
   * confirmed state as the object will apply them. A key they add, or delete
   * (or clear) and set again, goes last, in the order written; a key they
   * only set keeps its place. (#view's own order is the order of what
   * happened here.) Built by one pass over the confirmed state: about the
   * cost of listing the view's entries.
   */
  get ordered(): [string, Uint8Array][] {
    // What pending writes set since they last deleted each key, the keys they
    // deleted, and the confirmed entries they left (none after a clear).
    const added = new Map<string, Uint8Array>();
    const gone = new Set<string>();
    let kept: Iterable<[string, Uint8Array]> = this.#confirmed;
    for (const { write } of this.#pending) {
      applyTo(added, write);
      if (write.kind === "clear") kept = [];
      else if (write.kind === "delete") gone.add(write.key);
    }
    const entries: [string, Uint8Array][] = [];
    for (const [key, value] of kept) {
      // In its place, with the value a pending set gave it: not among the added keys.
      if (!gone.has(key)) entries.push([key, added.get(key) ?? value]), added.delete(key);
    }
    return [...entries, ...added];
  }

  /** A write made here: visible at once, pending until the object confirms it. */
  write(seq: number, write: LocalWrite): void {
    this.#pending.push({ seq, write });
    if (write.kind === "clear") return this.#rebuild(); // (every key goes)
    if (write.kind === "delete") {
      if (this.#view.delete(write.key)) this.#emit([[write.key, undefined]]);
      return;
    }
    const changes: [string, Uint8Array][] = [];
    // A key named twice: its last value, compared with the value before the write.
    for (const [key, value] of new Map(write.entries)) {
      if (!sameBytes(this.#view.get(key), value)) changes.push([key, value]);
      this.#view.set(key, value);
    }
    this.#emit(changes);
  }

  /** The object applied our write `seq` as `version`. */
  confirm(seq: number, version: number): void {
    const index = this.#pending.findIndex((p) => p.seq === seq);
    if (index < 0) return;
    const [done] = this.#pending.splice(index, 1);
    applyTo(this.#confirmed, done.write);
    if (version > this.#version) this.#version = version;
    // The view is unchanged: the write was already visible on top.
  }

  /** The object refused our write `seq`: it disappears from the view. */
  reject(seq: number): void {
    const index = this.#pending.findIndex((p) => p.seq === seq);
    if (index < 0) return;
    const [{ write }] = this.#pending.splice(index, 1);
    if (write.kind === "clear") this.#rebuild();
    else this.#refresh(write.kind === "set" ? write.entries : [[write.key]]);
  }

  /** A write from someone else, in the object's order. */
  remote(version: number, entries: WireEntry[], cleared: boolean): void {
    if (version <= this.#version) return; // already part of a snapshot
    this.#version = version;
    if (cleared) this.#confirmed.clear();
    this.#store(entries);
    if (cleared) this.#rebuild();
    else this.#refresh(entries);
  }

  /** One chunk of the snapshot under way. */
  snapshotChunk(entries: WireEntry[]): void {
    for (const entry of entries) this.#incoming.push(entry);
  }

  /**
   * The snapshot is complete: it replaces the confirmed state (full) or
   * brings it up to `version` (delta). Pending writes the object had applied
   * already (seq <= lastSeq) are part of it now.
   */
  snapshotDone(full: boolean, version: number, lastSeq: number): void {
    if (full) this.#confirmed.clear();
    this.#store(this.#incoming);
    this.#incoming = [];
    this.#version = version;
    this.#pending = this.#pending.filter((p) => p.seq > lastSeq);
    this.loaded = true;
    this.#rebuild();
  }

  /**
   * A (re)connect sends HELLO: a snapshot cut off by a disconnect is
   * forgotten; returns the HELLO fields that resume this replica.
   */
  resume(): { since?: number } {
    this.#incoming = [];
    return this.loaded ? { since: this.#version } : {};
  }

  /** Entries from the object (null: deleted) into the confirmed state. */
  #store(entries: WireEntry[]): void {
    for (const [key, value] of entries) {
      if (value === null) this.#confirmed.delete(key);
      // Copied: a value must not keep the whole message it came in alive.
      else this.#confirmed.set(key, value.slice());
    }
  }

  #valueOf(key: string): Uint8Array | undefined {
    let value = this.#confirmed.get(key);
    for (const { write } of this.#pending) {
      if (write.kind === "clear") value = undefined;
      else if (write.kind === "delete") {
        if (write.key === key) value = undefined;
      } else {
        for (const [k, v] of write.entries) if (k === key) value = v;
      }
    }
    return value;
  }

  /** Brings the view's value of each key in `entries` (the keys a write named) up to date. */
  #refresh(entries: readonly (readonly [string, ...unknown[]])[]): void {
    const changes: [string, Uint8Array | undefined][] = [];
    for (const [key] of entries) {
      const before = this.#view.get(key);
      const after = this.#valueOf(key);
      if (sameBytes(before, after)) continue;
      if (after === undefined) this.#view.delete(key);
      else this.#view.set(key, after);
      changes.push([key, after]);
    }
    this.#emit(changes);
  }

  #rebuild(): void {
    const before = this.#view;
    const after = new Map(this.ordered); // (the pending writes folded over the confirmed state)
    const changes: [string, Uint8Array | undefined][] = [];
    for (const [key, value] of after) {
      if (!sameBytes(before.get(key), value)) changes.push([key, value]);
    }
    for (const key of before.keys()) {
      if (!after.has(key)) changes.push([key, undefined]);
    }
    this.#view = after;
    this.#emit(changes);
  }

  /**
   * Reports changes in the order they were made to the view. A listener may
   * write meanwhile: its changes are queued behind the ones being delivered,
   * so every listener sees every change once, in order, and the last report
   * of a key is its visible value.
   */
  #emit(changes: [string, Uint8Array | undefined][]): void {
    for (const change of changes) this.#queue.push(change);
    if (this.#delivering) return;
    this.#delivering = true;
    try {
      for (let i = 0; i < this.#queue.length; i++) this.#sink(...this.#queue[i]);
    } finally {
      this.#queue = [];
      this.#delivering = false;
    }
  }

  #queue: [string, Uint8Array | undefined][] = [];
  #delivering = false;
}
