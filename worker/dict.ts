// A versioned dict in a Durable Object's SQLite: the mechanism behind both the
// global dict (space object) and each client's local dict (client object).
//
// Every write gets the next version. A row keeps the version of its last
// write; a deletion leaves a tombstone (value NULL) so that a replica holding
// version `since` can be sent just the rows with a greater version. Old
// tombstones are pruned past a bound, which raises `floor`: a replica older
// than the floor gets a full snapshot instead.
//
// Keys are in the order they were added, as in a Map: the rows' order (rowid).
// A key set again after its deletion goes last (its row takes a new rowid),
// as it does in every replica that saw the deletion and then the set; `born`
// keeps the version of that return, so that a delta can tell a replica to
// move the key (see snapshot). Replicas that apply the changes in the
// object's order then list the keys as a fresh snapshot does.
//
// The tables are created by the first write (see schema.ts): a dict never
// written is empty at version 0 without touching storage.
import { ErrorCode, Limits, checkKey, type LimitsInForce, type WireEntry } from "../client/protocol.js";
import { isWellFormedValue } from "../client/codec.js";
import { MAX_BIGINT_BYTES } from "./bignums.js";
import { ProtocolError } from "./errors.js";
import { Schema } from "./schema.js";

// The tombstones have a partial index of their own: counting them and pruning
// the oldest reads just them, and a set of a live key does not touch it.
// (The live keys are counted as all rows less the tombstones, through the
// narrow index by version: counting them among the values read every value.)
const SCHEMA = `
CREATE TABLE IF NOT EXISTS dict (key TEXT PRIMARY KEY, value BLOB, v INTEGER NOT NULL, born INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS dict_by_version ON dict (v);
CREATE INDEX IF NOT EXISTS dict_tombstones ON dict (v) WHERE value IS NULL;
CREATE TABLE IF NOT EXISTS dict_meta (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
`;

/** Tombstones kept for delta resumes before the oldest are pruned. */
const TOMBSTONES_KEPT = 10_000;

export type DictWrite =
  | { kind: "set"; entries: [string, Uint8Array][] }
  | { kind: "delete"; key: string }
  | { kind: "clear" };

export interface AppliedWrite {
  version: number;
  entries: WireEntry[];
  cleared: boolean;
  /** false when the write changed nothing (deleting a missing key): no new version. */
  changed: boolean;
}

export class VersionedDict {
  #sql: SqlStorage;
  #schema: Schema;
  #version = 0;
  #floor = 0;
  // Live keys and tombstones: counted from storage when first needed after
  // each wake (null until then). A set does not look its keys up unless the
  // dict could reach its key limit: it adds its keys to #live, which is then
  // an upper bound (#liveExact false) until the next count. #tombstones is
  // likewise an upper bound (a set may bring a tombstone back to life), made
  // exact again by each prune. Saves a statement per key set.
  #live: number | null = 0;
  #liveExact = true;
  #tombstones: number | null = 0;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
    this.#schema = new Schema(sql, "dict", SCHEMA, { added: ["dict_tombstones"], columns: { born: "INTEGER NOT NULL DEFAULT 0" } });
    if (!this.#schema.exists) return;

    // Each version is the v of the rows it wrote (a row keeps its last
    // write's v), so the greatest v is the version, read through the index
    // rather than written as a meta row on every write. The meta row counts
    // where rows may not: after a prune (which may remove all of the newest
    // version's tombstones), and in objects of earlier versions, which
    // wrote it on every write.
    const top = sql.exec<{ v: number | null }>("SELECT max(v) AS v FROM dict").one().v ?? 0;
    this.#version = Math.max(top, this.#meta("version"));
    this.#floor = this.#meta("floor");
    if (this.#schema.altered) {
      // The first start since keys keep their order (born added). Replicas
      // hold the keys of earlier versions in orders of their own: an earlier
      // version left a key set again after its deletion in its row's place,
      // where they put it last, and sent deltas in the order of versions.
      // From a version of their own, they would resume by a delta and keep
      // that order; a new version, and the floor at it, make them load it all.
      this.#version++;
      this.#floor = this.#version;
      this.#setMeta("version", this.#version);
      this.#setMeta("floor", this.#floor);
    }
    this.#live = null;
    this.#tombstones = null;
  }

  /** Live keys, exactly. */
  #countLive(): number {
    if (this.#live === null || !this.#liveExact) {
      if (this.#schema.exists) {
        const { rows, tombstones } = this.#sql.exec<{ rows: number; tombstones: number }>(
          "SELECT (SELECT count(*) FROM dict) AS rows, (SELECT count(*) FROM dict INDEXED BY dict_tombstones WHERE value IS NULL) AS tombstones",
        ).one();
        this.#live = rows - tombstones;
        this.#tombstones = tombstones;
      } else {
        this.#live = 0;
      }
      this.#liveExact = true;
    }
    return this.#live;
  }

  #countTombstones(): number {
    this.#tombstones ??= this.#schema.exists
      ? this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM dict INDEXED BY dict_tombstones WHERE value IS NULL").one().n
      : 0;
    return this.#tombstones;
  }

  get version(): number {
    return this.#version;
  }

  get size(): number {
    return this.#countLive();
  }

  #meta(name: string): number {
    const row = this.#sql.exec<{ n: number }>("SELECT n FROM dict_meta WHERE name = ?", name).toArray()[0];
    return row ? row.n : 0;
  }

  #setMeta(name: string, n: number): void {
    this.#sql.exec("INSERT INTO dict_meta (name, n) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET n = excluded.n", name, n);
  }

  /** The encoded value of `key`, or null. */
  read(key: string): Uint8Array | null {
    if (!this.#schema.exists) return null;
    const row = this.#sql.exec<{ value: ArrayBuffer }>("SELECT value FROM dict WHERE key = ? AND value IS NOT NULL", key).toArray()[0];
    return row ? new Uint8Array(row.value) : null;
  }

  /**
   * Live entries with keys after `after` (none: from the first key, which
   * may be the empty string), in key order: at most `limit` of them and
   * about `maxBytes` of values (at least one). `more`: others follow.
   */
  page(after: string | undefined, limit: number, maxBytes: number): { entries: [string, Uint8Array][]; more: boolean } {
    const entries: [string, Uint8Array][] = [];
    if (!this.#schema.exists) return { entries, more: false };
    let bytes = 0;
    const rows = after === undefined
      ? this.#sql.exec<{ key: string; value: ArrayBuffer }>("SELECT key, value FROM dict WHERE value IS NOT NULL ORDER BY key LIMIT ?", limit + 1)
      : this.#sql.exec<{ key: string; value: ArrayBuffer }>(
        "SELECT key, value FROM dict WHERE key > ? AND value IS NOT NULL ORDER BY key LIMIT ?", after, limit + 1,
      );
    for (const row of rows) {
      if (entries.length === limit || (entries.length > 0 && bytes + row.value.byteLength > maxBytes)) return { entries, more: true };
      entries.push([row.key, new Uint8Array(row.value)]);
      bytes += row.value.byteLength;
    }
    return { entries, more: false };
  }

  /** What is stored for each of `keys`: true a live value, false a tombstone, no entry no row. */
  #rows(keys: Iterable<string>): Map<string, boolean> {
    const rows = new Map<string, boolean>();
    if (!this.#schema.exists) return rows;
    for (const key of keys) {
      if (rows.has(key)) continue;
      const row = this.#sql.exec<{ live: number }>("SELECT value IS NOT NULL AS live FROM dict WHERE key = ?", key).toArray()[0];
      if (row) rows.set(key, row.live === 1);
    }
    return rows;
  }

  /**
   * Checks a write against the limits without changing anything; throws
   * ProtocolError. For a set that could reach the key limit, returns what it
   * looked up, for apply().
   */
  check(write: DictWrite, limits: LimitsInForce): Map<string, boolean> | undefined {
    if (write.kind === "clear") return;
    if (write.kind === "delete") {
      const bad = checkKey(write.key);
      if (bad) throw new ProtocolError(bad.code, bad.message);
      return;
    }
    if (write.entries.length > Limits.MAX_UPDATE_ENTRIES) {
      throw new ProtocolError(ErrorCode.BAD_ARGUMENT, `an update is limited to ${Limits.MAX_UPDATE_ENTRIES} keys`);
    }
    for (const [key, value] of write.entries) {
      const bad = checkKey(key);
      if (bad) throw new ProtocolError(bad.code, bad.message);
      if (value.byteLength > limits.MAX_VALUE_BYTES) {
        throw new ProtocolError(ErrorCode.VALUE_TOO_LARGE, `a value is limited to ${limits.MAX_VALUE_BYTES} encoded bytes (got ${value.byteLength})`);
      }
      if (!isWellFormedValue(value)) throw new ProtocolError(ErrorCode.BAD_VALUE, `the value of ${JSON.stringify(key)} is not a well-formed encoded value (a BigInt in one is at most ${MAX_BIGINT_BYTES} bytes)`);
    }
    const keys = new Set(write.entries.map(([key]) => key));
    // Fits even if every key is new (and #live is at least the live count): no look-up.
    if ((this.#live ?? Infinity) + keys.size <= limits.MAX_KEYS_PER_DICT) return undefined;
    const live = this.#countLive();
    const rows = this.#rows(keys);
    let added = 0;
    for (const key of keys) if (rows.get(key) !== true) added++;
    // A write that adds no key passes even where a lowered limit is below the
    // live count already (as the library checks it): it changes values only.
    if (added > 0 && live + added > limits.MAX_KEYS_PER_DICT) {
      throw new ProtocolError(ErrorCode.TOO_MANY_KEYS, `a dict is limited to ${limits.MAX_KEYS_PER_DICT} keys`);
    }
    return rows;
  }

  /**
   * Applies one write (already checked; `rows`: what check() returned for
   * it). Deleting a missing key or clearing an empty dict changes nothing:
   * no new version, nothing stored.
   */
  apply(write: DictWrite, rows?: Map<string, boolean>): AppliedWrite {
    const sql = this.#sql;
    let result: AppliedWrite;
    const unchanged = { version: this.#version, entries: [], cleared: false, changed: false };
    if (write.kind === "delete" || write.kind === "clear") {
      if (!this.#schema.exists) return unchanged;
      const tombstones = this.#countTombstones();
      const v = this.#version + 1;
      // Rows made tombstones, counted from RETURNING (rowsWritten counts index writes too).
      const made = write.kind === "delete"
        ? sql.exec("UPDATE dict SET value = NULL, v = ? WHERE key = ? AND value IS NOT NULL RETURNING 1", v, write.key).toArray().length
        : sql.exec("UPDATE dict SET value = NULL, v = ? WHERE value IS NOT NULL RETURNING 1", v).toArray().length;
      if (write.kind === "clear") {
        this.#live = 0;
        this.#liveExact = true;
      } else if (made > 0 && this.#live !== null) {
        this.#live -= made;
      }
      if (made === 0) return unchanged;
      this.#version = v;
      this.#tombstones = tombstones + made;
      result = write.kind === "delete"
        ? { version: v, entries: [[write.key, null]], cleared: false, changed: true }
        : { version: v, entries: [], cleared: true, changed: true };
    } else {
      // An update of no keys stores nothing, so it takes no version (a
      // version no row carries would be lost at the next wake).
      if (write.entries.length === 0) return unchanged;
      this.#schema.create();
      const v = ++this.#version;
      for (const [key, value] of write.entries) {
        // A new key or a live one: one statement, which writes the row and its
        // entry in the index by version. (Naming rowid in this SET, even to
        // keep it, would rewrite every index entry of the row, the key's too:
        // a third row written, and a second read, for each set of a live key.)
        const stored = sql.exec(
          "INSERT INTO dict (key, value, v) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, v = excluded.v WHERE dict.value IS NOT NULL",
          key, value, v,
        ).rowsWritten;
        // Over a tombstone (which the statement above leaves alone, writing
        // nothing), the key returns: last in order, born now.
        if (stored === 0) {
          sql.exec("UPDATE dict SET value = ?, v = ?, born = ?, rowid = (SELECT max(rowid) FROM dict) + 1 WHERE key = ?", value, v, v, key);
        }
      }
      if (rows && this.#live !== null && this.#liveExact) {
        for (const [key] of write.entries) {
          const was = rows.get(key);
          if (was === true) continue;
          this.#live++;
          if (was === false && this.#tombstones !== null) this.#tombstones--;
          rows.set(key, true); // a key given twice counts once
        }
      } else if (this.#live !== null) {
        this.#live += new Set(write.entries.map(([key]) => key)).size;
        this.#liveExact = false;
      }
      result = { version: v, entries: write.entries, cleared: false, changed: true };
    }
    if (this.#tombstones !== null && this.#tombstones > 2 * TOMBSTONES_KEPT) this.#prune();
    return result;
  }

  #prune(): void {
    const cut = this.#sql
      .exec<{ v: number }>("SELECT v FROM dict INDEXED BY dict_tombstones WHERE value IS NULL ORDER BY v DESC LIMIT 1 OFFSET ?", TOMBSTONES_KEPT)
      .toArray()[0];
    if (cut) {
      this.#sql.exec("DELETE FROM dict INDEXED BY dict_tombstones WHERE value IS NULL AND v <= ?", cut.v);
      this.#floor = Math.max(this.#floor, cut.v);
      this.#setMeta("floor", this.#floor);
      // The rows pruned may include every row of the newest version (a clear's
      // tombstones): from here on it is kept as a meta row too.
      this.#setMeta("version", this.#version);
    }
    // Exact again (the count was an upper bound, maybe well above).
    this.#tombstones = null;
    this.#countTombstones();
  }

  /**
   * The snapshot for a replica that holds `since` (or nothing), in chunks of
   * about SNAPSHOT_CHUNK_BYTES, in key order (see the top). A delta (only
   * rows changed after `since`, tombstones included) when the tombstones
   * since then are all still kept. In a delta, a key that returned after a
   * deletion since then comes as its deletion and then its value: a replica
   * that still holds it from before moves it last, as the object did.
   */
  *snapshot(since?: number): Generator<WireEntry[], { full: boolean; version: number }> {
    const delta = since !== undefined && since >= this.#floor && since <= this.#version;
    if (!this.#schema.exists) return { full: !delta, version: this.#version };
    type Row = { key: string; value: ArrayBuffer | null; born: number };
    const cursor = delta
      // (The rows found through the index by version, then read in rowid order
      // one by one: ordered by rowid alone, SQLite would read every row; and
      // sorted whole, the rows would all be read, values too, into its sorter
      // before the first chunk, and held there until the last.)
      ? this.#sql.exec<Row>(
        "SELECT key, value, born FROM dict WHERE rowid IN (SELECT rowid FROM dict INDEXED BY dict_by_version WHERE v > ?) ORDER BY rowid", since,
      )
      : this.#sql.exec<Row>("SELECT key, value, born FROM dict WHERE value IS NOT NULL ORDER BY rowid");
    let chunk: WireEntry[] = [];
    let bytes = 0;
    for (const row of cursor) {
      const value = row.value === null ? null : new Uint8Array(row.value);
      const moved = delta && value !== null && row.born > since;
      const size = (moved ? 2 : 1) * (row.key.length * 3 + 16) + (value?.byteLength ?? 0);
      if (chunk.length > 0 && bytes + size > Limits.SNAPSHOT_CHUNK_BYTES) {
        yield chunk;
        chunk = [];
        bytes = 0;
      }
      if (moved) chunk.push([row.key, null]);
      chunk.push([row.key, value]);
      bytes += size;
    }
    if (chunk.length > 0) yield chunk;
    return { full: !delta, version: this.#version };
  }
}
