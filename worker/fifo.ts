// The durable FIFO with waiting receivers and leased delivery: the one
// mechanism behind local pipes, local queues and global queues.
//
// An item is taken by leasing it to a socket; it leaves storage only when the
// receiver's session acknowledges it. If the socket closes first, the item is
// held for that session for RECONNECT_GRACE_MS: a client that reconnects in
// time either acknowledges it (it had received it) or gets it again on its
// replayed request (the reply was lost), so it gets every item exactly once.
// After the grace the item is back at the head for everyone: only a receiver
// that died between receiving and acknowledging causes a redelivery.
//
// Waiting receivers (socket id + request id) are served first come, first
// served. They live in memory and, to survive hibernation, with their socket:
// in its attachment (see WaitStore), or, for a socket with many waits, as a
// row. A wait ends with its socket anyway, so it needs nothing that outlives
// the socket, and a GET that waits writes no row: its event commits nothing,
// and the commit of the PUT that serves it does not queue behind another.
//
// The tables are created by the first put or wait (see schema.ts): until
// then every read finds nothing without touching storage.
import { Schema } from "./schema.js";

// Items by number, an index by fifo (the order in line) and a partial one by
// session that holds just the delivered items (a socket's close, a restart
// and the holds find them there). Numbers come from a counter kept in fifo_meta a block at
// a time. The layout of earlier versions (fifo_items: AUTOINCREMENT, which
// writes sqlite_sequence on every insert, and an index by lease that every
// item entered) wrote 5 pages per pipe put where this writes 4 (WAL writes
// per commit in workerd: 10 against 8): a pipe round trip is 1-3% closer to
// its floor, a global queue 5% faster (see BENCHMARKS.md). Its rows move
// over on first use (see the constructor). A table keyed by (fifo, seq)
// without a rowid writes 3, but stores a value over about 1 KB on an
// overflow page of its own: 2-3x the bytes.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS fifo_entries (
  seq INTEGER PRIMARY KEY,
  fifo TEXT NOT NULL,
  value BLOB NOT NULL,
  lease TEXT,          -- socket id of the receiver while delivered and unacknowledged
  session TEXT,        -- the receiver's session, which may acknowledge it
  held_until INTEGER   -- after the receiver's socket closed: kept for its session until then
);
CREATE INDEX IF NOT EXISTS fifo_entries_by_fifo ON fifo_entries (fifo, seq);
CREATE INDEX IF NOT EXISTS fifo_entries_by_session ON fifo_entries (session, seq) WHERE session IS NOT NULL;
CREATE TABLE IF NOT EXISTS fifo_meta (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
`;

/** Item numbers reserved in fifo_meta per write there: one row written per this many puts. */
const SEQ_BLOCK = 1024;

// The waits that did not fit in their socket's attachment. (Objects of
// earlier versions kept every wait in a table fifo_waiters; its rows ended
// with their sockets when those versions stopped, and it is not read.)
const WAITS_SCHEMA = `
CREATE TABLE IF NOT EXISTS fifo_waits (
  ord INTEGER PRIMARY KEY,
  fifo TEXT NOT NULL,
  socket TEXT NOT NULL,
  session TEXT NOT NULL,
  request INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS fifo_waits_by_socket ON fifo_waits (socket);
`;

/** How long an item stays reserved for a receiver whose connection dropped. */
export const RECONNECT_GRACE_MS = 20_000;

export interface Item {
  seq: number;
  value: Uint8Array;
}

export interface Delivery {
  socket: string;
  request: number;
  item: Item;
}

/**
 * Whether a waiter's socket (or HTTP take) is there: true, it may be served;
 * false, it is gone and its waits end; null, it is there but not served now
 * (see late-cancels.ts).
 */
export type Presence = (socket: string) => boolean | null;

/**
 * Told of each item as it is leased to a waiter (see put and serve): false
 * if that waiter cannot take it after all (an HTTP take that cannot show it
 * as its caller asked: answered with an error), and the item is back at its
 * place for the waiters after it.
 */
export type Offer = (waiter: Waiter, item: Item) => boolean;

export interface Receiver {
  socket: string;
  session: string;
}

/** One waiting receive; `ord` orders all waits of the object (first come, first served). */
export interface Waiter extends Receiver {
  ord: number;
  fifo: string;
  request: number;
  /** Kept as a row of fifo_waits rather than in its socket's attachment. */
  row?: boolean;
  /** Kept in memory only (an HTTP take's: its request keeps the object awake). */
  memory?: boolean;
}

/** Where waits are kept across hibernation besides rows: with their sockets (see shared-object.ts). */
export interface WaitStore {
  /** Every wait kept with an open socket. */
  load(): Waiter[];
  /** Keeps `waits` (all of that socket's non-row waits) with socket `socket`; false if they do not fit. */
  save(socket: string, waits: Waiter[]): boolean;
}

export interface FifoStats {
  /** Items stored, delivered or not. */
  items: number;
  /** Their encoded bytes. */
  bytes: number;
}

/** One queue or pipe direction as the inspector lists it. */
export interface ChannelLength {
  /** The fifo's name: "queue:<name>", "pipe:up:<name>" (client to server) or "pipe:down:<name>". */
  fifo: string;
  /** Items waiting to be taken. */
  waiting: number;
  /** Items delivered and not yet acknowledged (or held for a receiver). */
  delivered: number;
  /** Receivers waiting for an item. */
  receivers: number;
}

export class Fifo {
  #sql: SqlStorage;
  #schema: Schema;
  // Counts per fifo, computed from storage on first use after each wake and
  // kept up to date after: the limits need them on every put.
  #stats = new Map<string, FifoStats>();
  // Rows not leased to anyone (held ones included) per fifo, counted from
  // storage on first use and kept after; an entry is dropped (counted again
  // when next needed) where keeping it exact would take a read. While it is
  // 0, a take finds nothing without a query, and a put with a receiver
  // waiting stores the item already leased to it (one statement, not two).
  #ready = new Map<string, number>();
  // Whether any item may be held (false only once a query found none):
  // a waiting receive looks for the end of a hold only if so.
  #maybeHeld: boolean | undefined;

  #waitsSchema: Schema;
  #store: WaitStore;
  // Every wait, in order; read from the sockets and rows on first use after each wake.
  #waitList: Waiter[] | null = null;
  #nextOrd = 1;

  // The next item number, and the end of the block reserved in fifo_meta
  // (read on the first put after each wake).
  #nextSeq = 0;
  #seqEnd = 0;

  /** `atomic` runs a function as one transaction (the object's transactionSync). */
  constructor(sql: SqlStorage, store: WaitStore, atomic: (fn: () => void) => void = (fn) => fn()) {
    this.#sql = sql;
    this.#store = store;
    this.#schema = new Schema(sql, "fifo_entries", SCHEMA, { legacy: {
      table: "fifo_items",
      upgrade: (create, alongside) => atomic(() => {
        create();
        if (!alongside) {
          // Each item keeps its number (its receiver may acknowledge it by
          // it), and the next is past any AUTOINCREMENT ever issued.
          sql.exec(`INSERT INTO fifo_entries (seq, fifo, value, lease, session, held_until)
                    SELECT seq, fifo, value, lease, session, held_until FROM fifo_items`);
          const issued = sql.exec<{ n: number }>(
            "SELECT max(coalesce((SELECT max(seq) FROM fifo_items), 0), coalesce((SELECT max(seq) FROM sqlite_sequence WHERE name = 'fifo_items'), 0)) AS n",
          ).one().n;
          this.#reserve(issued + 1);
        } else {
          // An earlier version ran again after the move (a rollback) and
          // numbered its items from 1 again: they go in line after the others,
          // with new numbers, to be taken again (an acknowledgement by an old
          // number could match another item).
          const first = this.#reserved();
          const { n } = sql.exec<{ n: number }>("SELECT count(*) AS n FROM fifo_items").one();
          sql.exec(`INSERT INTO fifo_entries (seq, fifo, value)
                    SELECT ?1 + row_number() OVER (ORDER BY seq) - 1, fifo, value FROM fifo_items`, first);
          this.#reserve(first + n);
        }
        sql.exec("DROP TABLE fifo_items");
      }),
    } });
    this.#waitsSchema = new Schema(sql, "fifo_waits", WAITS_SCHEMA);
  }

  get #waits(): Waiter[] {
    if (this.#waitList === null) {
      const all = this.#store.load();
      if (this.#waitsSchema.exists) {
        for (const row of this.#sql.exec<{ ord: number; fifo: string; socket: string; session: string; request: number }>(
          "SELECT ord, fifo, socket, session, request FROM fifo_waits",
        )) all.push({ ...row, row: true });
      }
      all.sort((a, b) => a.ord - b.ord);
      this.#nextOrd = (all.at(-1)?.ord ?? 0) + 1;
      this.#waitList = all;
    }
    return this.#waitList;
  }

  /** The waits on `fifo` that may be served, in order; those whose socket is gone end on the way. */
  *#openWaits(fifo: string, presence: Presence): Generator<Waiter> {
    // A copy: the caller ends waits as it serves them.
    for (const waiter of this.#waits.filter((w) => w.fifo === fifo)) {
      const there = presence(waiter.socket);
      if (there) yield waiter;
      else if (there === false) this.#unwait(waiter);
    }
  }

  /** Keeps the non-row waits of `socket` with it again after a change. */
  #saveSocket(socket: string): void {
    this.#store.save(socket, this.#waits.filter((w) => w.socket === socket && !w.row));
  }

  /** Ends wait `waiter`. */
  #unwait(waiter: Waiter): void {
    const waits = this.#waits;
    waits.splice(waits.indexOf(waiter), 1);
    if (waiter.memory) this.#memoryWaits--;
    else if (waiter.row) this.#sql.exec("DELETE FROM fifo_waits WHERE ord = ?", waiter.ord);
    else this.#saveSocket(waiter.socket);
  }

  /** Waits kept in memory only (HTTP takes'): counted so that `waiting` needs no pass over every wait. */
  #memoryWaits = 0;

  /** Waits of sockets (HTTP takes have their own bound). */
  get waiting(): number {
    return this.#waits.length - this.#memoryWaits;
  }

  /** The first item number not marked as used in fifo_meta. */
  #reserved(): number {
    const row = this.#sql.exec<{ n: number }>("SELECT n FROM fifo_meta WHERE name = 'seq'").toArray()[0];
    return Math.max(row?.n ?? 1, 1);
  }

  /** Marks every item number below `end` as used, in fifo_meta (never lowering the mark). */
  #reserve(end: number): void {
    this.#sql.exec("INSERT INTO fifo_meta (name, n) VALUES ('seq', ?1) ON CONFLICT (name) DO UPDATE SET n = max(n, ?1)", end);
  }

  /**
   * The next item number: increasing, and never used twice in this object
   * (a late ACK of an item taken long ago must not match a new one). Numbers
   * are reserved a block at a time; a wake skips the rest of the block.
   */
  #allocate(): number {
    if (this.#nextSeq >= this.#seqEnd) {
      if (this.#seqEnd === 0) this.#nextSeq = this.#reserved();
      const end = this.#nextSeq + SEQ_BLOCK;
      this.#reserve(end); // first: if it throws, nothing unreserved is handed out
      this.#seqEnd = end;
    }
    return this.#nextSeq++;
  }

  /** Whether any fifo was ever used here (else there is nothing to read). */
  get #used(): boolean {
    return this.#schema.exists;
  }

  stats(fifo: string): FifoStats {
    let stats = this.#stats.get(fifo);
    if (!stats && !this.#used) this.#stats.set(fifo, (stats = { items: 0, bytes: 0 }));
    if (!stats) {
      const row = this.#sql.exec<{ items: number; bytes: number }>(
        "SELECT count(*) AS items, coalesce(sum(length(value)), 0) AS bytes FROM fifo_entries WHERE fifo = ?", fifo,
      ).one();
      this.#stats.set(fifo, (stats = { items: row.items, bytes: row.bytes }));
    }
    return stats;
  }

  /** Rows of `fifo` leased to nobody (see #ready). */
  #readyOf(fifo: string): number {
    let ready = this.#ready.get(fifo);
    if (ready === undefined) {
      ready = this.#used
        ? this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM fifo_entries WHERE fifo = ? AND lease IS NULL", fifo).one().n
        : 0;
      this.#ready.set(fifo, ready);
    }
    return ready;
  }

  #addReady(fifo: string, n: number): void {
    const ready = this.#ready.get(fifo);
    if (ready !== undefined) this.#ready.set(fifo, ready + n);
  }

  /**
   * Stores an item on `fifo`. If nothing is in line before it and a receiver
   * waits that may be served (see Presence), the item is
   * stored leased to the first such receiver and returned as its delivery:
   * what serve() would do next, in one statement. (If `offer` says that
   * receiver cannot take it, it is back in line and null is returned.)
   */
  put(fifo: string, value: Uint8Array, presence?: Presence, offer?: Offer): Delivery | null {
    const stats = this.stats(fifo);
    this.#schema.create();
    const stored = () => {
      stats.items++;
      stats.bytes += value.byteLength;
    };
    if (presence && this.#readyOf(fifo) === 0) {
      for (const waiter of this.#openWaits(fifo, presence)) {
        const seq = this.#allocate();
        this.#sql.exec("INSERT INTO fifo_entries (fifo, seq, value, lease, session) VALUES (?, ?, ?, ?, ?)", fifo, seq, value, waiter.socket, waiter.session);
        stored();
        this.#unwait(waiter);
        const item = { seq, value };
        if (offer && !offer(waiter, item)) {
          this.release(waiter.session, [seq]); // in line: the caller serves the waiters after it
          return null;
        }
        return { socket: waiter.socket, request: waiter.request, item };
      }
    }
    this.#sql.exec("INSERT INTO fifo_entries (fifo, seq, value) VALUES (?, ?, ?)", fifo, this.#allocate(), value);
    stored();
    this.#addReady(fifo, 1);
    return null;
  }

  /** Items waiting to be taken (delivered ones, acknowledged or not yet, and held ones are not counted). */
  size(fifo: string, now = Date.now()): number {
    if (this.#readyOf(fifo) === 0) return 0;
    return this.#sql.exec<{ n: number }>(
      "SELECT count(*) AS n FROM fifo_entries WHERE fifo = ? AND lease IS NULL AND (held_until IS NULL OR held_until <= ?)", fifo, now,
    ).one().n;
  }

  /** Leases the first item `receiver` may take, or returns null. */
  take(fifo: string, receiver: Receiver, now = Date.now()): Item | null {
    if (this.#readyOf(fifo) === 0) return null;
    const row = this.#sql.exec<{ seq: number; value: ArrayBuffer }>(
      `UPDATE fifo_entries SET lease = ?1, session = ?2, held_until = NULL
       WHERE fifo = ?3 AND seq = (SELECT seq FROM fifo_entries
                    WHERE fifo = ?3 AND lease IS NULL AND (held_until IS NULL OR held_until <= ?4 OR session = ?2)
                    ORDER BY seq LIMIT 1)
       RETURNING seq, value`,
      receiver.socket, receiver.session, fifo, now,
    ).toArray()[0];
    if (!row) return null;
    this.#addReady(fifo, -1);
    return { seq: row.seq, value: new Uint8Array(row.value) };
  }

  /**
   * Turns the lease of item `seq`, delivered to `session`, into a hold until
   * `until`: only that session may acknowledge it meanwhile; after that it is
   * back at the head for all.
   */
  hold(session: string, seq: number, until: number): void {
    for (const { fifo } of this.#sql.exec<{ fifo: string }>(
      "UPDATE fifo_entries SET lease = NULL, held_until = ? WHERE session = ? AND seq = ? RETURNING fifo", until, session, seq,
    )) {
      this.#ready.delete(fifo);
    }
    this.#maybeHeld = true;
  }

  /**
   * Registers a receiver waiting on `fifo` for request `request`, in line
   * after every wait before it; `memory`: kept nowhere else (an HTTP take's).
   */
  wait(fifo: string, receiver: Receiver, request: number, memory = false): void {
    const waits = this.#waits;
    const waiter: Waiter = { ord: this.#nextOrd++, fifo, socket: receiver.socket, session: receiver.session, request };
    waits.push(waiter);
    if (memory) {
      waiter.memory = true;
      this.#memoryWaits++;
      return;
    }
    const kept = waits.filter((w) => w.socket === waiter.socket && !w.row);
    if (this.#store.save(waiter.socket, kept)) return;
    // It does not fit with its socket: a row (written in this event, as before).
    waiter.row = true;
    this.#waitsSchema.create();
    this.#sql.exec("INSERT INTO fifo_waits (ord, fifo, socket, session, request) VALUES (?, ?, ?, ?, ?)", waiter.ord, fifo, waiter.socket, waiter.session, request);
  }

  /** How many receives wait on `socket`. */
  waitsOf(socket: string): number {
    let n = 0;
    for (const w of this.#waits) if (w.socket === socket) n++;
    return n;
  }

  /** Removes a waiting request; false if it was not waiting (already served, or unknown). */
  cancel(socket: string, request: number): boolean {
    const waiter = this.#waits.find((w) => w.socket === socket && w.request === request);
    if (!waiter) return false;
    this.#unwait(waiter);
    return true;
  }

  /** Whether item `seq` is delivered to socket `socket` of `session` and not yet acknowledged or given back. */
  leasedTo(session: string, seq: number, socket: string): boolean {
    return this.#used && this.#sql.exec("SELECT 1 FROM fifo_entries WHERE session = ? AND seq = ? AND lease = ?", session, seq, socket).toArray().length > 0;
  }

  /** Deletes items `seqs` that were delivered to `session`; returns how many. */
  ack(session: string, seqs: number[]): number {
    if (!this.#used) return 0;
    let removed = 0;
    for (const seq of seqs) {
      const row = this.#sql.exec<{ fifo: string; size: number; unleased: number }>(
        "DELETE FROM fifo_entries WHERE session = ? AND seq = ? RETURNING fifo, length(value) AS size, lease IS NULL AS unleased", session, seq,
      ).toArray()[0];
      if (!row) continue;
      removed++;
      if (row.unleased) this.#addReady(row.fifo, -1);
      const stats = this.#stats.get(row.fifo);
      if (stats) {
        stats.items--;
        stats.bytes -= row.size;
      }
    }
    return removed;
  }

  /** Gives items `seqs` delivered to `session` back, at their place in line; returns the fifos touched. */
  release(session: string, seqs: number[]): string[] {
    if (!this.#used) return [];
    const fifos = new Set<string>();
    for (const seq of seqs) {
      const row = this.#sql.exec<{ fifo: string }>(
        "UPDATE fifo_entries SET lease = NULL, session = NULL, held_until = NULL WHERE session = ? AND seq = ? RETURNING fifo",
        session, seq,
      ).toArray()[0];
      if (row) fifos.add(row.fifo);
    }
    for (const fifo of fifos) this.#ready.delete(fifo);
    return [...fifos];
  }

  /**
   * Socket `socket` of session `session` closed: its waits end, and what was
   * delivered to it is held for its session for the grace period (or, if
   * `ended`, the session's handle closed for good: released). Returns the
   * fifos of the items touched: that session may already wait on them again
   * from its new socket, or others may take them.
   */
  socketClosed(socket: string, session: string, now = Date.now(), ended = false): string[] {
    if (this.#waitList !== null) this.#waitList = this.#waitList.filter((w) => w.socket !== socket);
    if (this.#waitsSchema.exists) this.#sql.exec("DELETE FROM fifo_waits WHERE socket = ?", socket);
    if (!this.#used) return [];
    const fifos = new Set<string>();
    // A session that ended (its handle closed) never comes back for what it
    // was given and did not acknowledge (an item on its way as it closed,
    // or held for it since an earlier socket): back in line at once.
    for (const { fifo } of ended
      ? this.#sql.exec<{ fifo: string }>(
        "UPDATE fifo_entries SET lease = NULL, session = NULL, held_until = NULL WHERE session = ? AND (lease = ? OR lease IS NULL) RETURNING fifo", session, socket,
      )
      : this.#sql.exec<{ fifo: string }>(
        "UPDATE fifo_entries SET lease = NULL, held_until = ? WHERE session = ? AND lease = ? RETURNING fifo", now + RECONNECT_GRACE_MS, session, socket,
      )) fifos.add(fifo);
    for (const fifo of fifos) this.#ready.delete(fifo);
    if (fifos.size > 0 && !ended) this.#maybeHeld = true;
    return [...fifos];
  }

  /** The first `limit` fifos (by name) that hold items or have receivers waiting. */
  lengths(limit: number, now = Date.now()): ChannelLength[] {
    const byFifo = new Map<string, ChannelLength>();
    const entry = (fifo: string) => {
      let length = byFifo.get(fifo);
      if (!length) byFifo.set(fifo, (length = { fifo, waiting: 0, delivered: 0, receivers: 0 }));
      return length;
    };
    if (this.#used) {
      // The first `limit` fifos with items: any of the first `limit` overall that has items is among them.
      for (const row of this.#sql.exec<{ fifo: string; waiting: number; delivered: number }>(
        `SELECT fifo, sum(lease IS NULL AND (held_until IS NULL OR held_until <= ?1)) AS waiting,
                sum(NOT (lease IS NULL AND (held_until IS NULL OR held_until <= ?1))) AS delivered
         FROM fifo_entries GROUP BY fifo ORDER BY fifo LIMIT ?2`,
        now, limit,
      )) Object.assign(entry(row.fifo), { waiting: row.waiting, delivered: row.delivered });
    }
    for (const w of this.#waits) entry(w.fifo).receivers++;
    return [...byFifo.values()].sort((a, b) => (a.fifo < b.fifo ? -1 : a.fifo > b.fifo ? 1 : 0)).slice(0, limit);
  }

  /**
   * After the object (re)started: sockets that vanished while it was down
   * never get a close event (a restart drops them silently), so their leases
   * and waits are ended here as if they had closed. Returns the fifos of the
   * items now held, like socketClosed.
   */
  reclaim(isOpen: (socket: string) => boolean, now = Date.now()): string[] {
    if (this.#waitsSchema.exists) {
      for (const { socket } of this.#sql.exec<{ socket: string }>("SELECT DISTINCT socket FROM fifo_waits").toArray()) {
        if (!isOpen(socket)) this.#sql.exec("DELETE FROM fifo_waits WHERE socket = ?", socket);
      }
    }
    if (!this.#used) return [];
    // Leased items have a session: the partial index lists just the delivered ones.
    const leases = this.#sql.exec<{ socket: string; session: string }>(
      "SELECT DISTINCT lease AS socket, session FROM fifo_entries WHERE session IS NOT NULL AND lease IS NOT NULL",
    ).toArray();
    const fifos = new Set<string>();
    for (const { socket, session } of leases) {
      if (!isOpen(socket)) for (const fifo of this.socketClosed(socket, session, now)) fifos.add(fifo);
    }
    return [...fifos];
  }

  /** Fifos that have waiting receivers. */
  waitedOn(): string[] {
    return [...new Set(this.#waits.map((w) => w.fifo))];
  }

  /** The earliest end of a hold on a fifo someone waits on, if any. */
  nextHoldEnd(now = Date.now()): number | null {
    if (!this.#used || this.#waits.length === 0 || this.#maybeHeld === false) return null;
    const waited = new Set(this.waitedOn());
    let end: number | null = null;
    let any = false;
    // Held items have a session, so the partial index lists them among the
    // delivered ones (usually few). Named: without statistics SQLite scans
    // every item instead (17 ms for 100,000 here, on each waiting GET).
    for (const row of this.#sql.exec<{ fifo: string; t: number }>(
      `SELECT fifo, min(held_until) AS t FROM fifo_entries INDEXED BY fifo_entries_by_session
       WHERE session IS NOT NULL AND held_until > ? AND lease IS NULL GROUP BY fifo`, now,
    )) {
      any = true;
      if (waited.has(row.fifo) && (end === null || row.t < end)) end = row.t;
    }
    this.#maybeHeld = any;
    return end;
  }

  /**
   * Matches waiting receivers of `fifo` with items, first come first served.
   * `presence` tells whether a waiter's socket is still there (a waiter of a
   * vanished socket is dropped) and may be served; `offer` (see Offer) whether
   * it takes the item leased to it. Returns the deliveries to send.
   */
  serve(fifo: string, presence: Presence, offer?: Offer, now = Date.now()): Delivery[] {
    if (!this.#used) return [];
    const deliveries: Delivery[] = [];
    // Items held for a reconnecting session can only go to that session's waiter:
    // without any, the first waiter that finds nothing ends the round.
    let anyHeld: boolean | undefined;
    for (const waiter of this.#openWaits(fifo, presence)) {
      const item = this.take(fifo, waiter, now);
      if (!item) {
        anyHeld ??= this.#sql.exec(
          `SELECT 1 FROM fifo_entries INDEXED BY fifo_entries_by_session
           WHERE session IS NOT NULL AND fifo = ? AND lease IS NULL AND held_until > ? LIMIT 1`, fifo, now,
        ).toArray().length > 0;
        if (anyHeld) continue;
        return deliveries;
      }
      this.#unwait(waiter);
      if (offer && !offer(waiter, item)) {
        this.release(waiter.session, [item.seq]); // the next waiter's
        continue;
      }
      deliveries.push({ socket: waiter.socket, request: waiter.request, item });
    }
    return deliveries;
  }
}
