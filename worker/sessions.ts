// The last write request id each session (one client-library handle) had
// applied by this object. A handle that reconnects learns it from HELLO and
// does not send those writes again, so a write is applied once even when its
// reply was lost with the connection.
//
// A write the object refused (a full queue, too many keys...) is remembered
// too, by its id, with its error: a handle whose socket dropped before the
// error reached it learns it in the HELLO that follows, instead of taking
// the write for applied (at or below its last applied one) or sending it
// again (above it).
// The handle names its oldest write still in flight in that HELLO: refusals
// below it are forgotten then. At most MAX_REFUSALS are kept per session;
// past that the oldest are forgotten, and the HELLO says up to which write:
// the handle cannot tell an applied write there from a refused one.
//
// Reading it (every HELLO) writes nothing (but, once, a table a later version
// added, and refusals the handle no longer needs; see schema.ts and
// refusals()): the table is created by the first
// write (see schema.ts), and stale sessions are forgotten by a write, at most
// once per PRUNE_EVERY_MS, not by the HELLO that reads. The time of the last
// prune is stored: it reads every session, and an object that sleeps between
// writes would otherwise do it on the first write after every wake.
import { Limits } from "../client/protocol.js";
import { Schema } from "./schema.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS sessions (session TEXT PRIMARY KEY, seq INTEGER NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions_meta (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS session_refusals (
  session TEXT NOT NULL, seq INTEGER NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL, at INTEGER NOT NULL,
  PRIMARY KEY (session, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS session_refusals_forgotten (session TEXT PRIMARY KEY, first INTEGER NOT NULL, upto INTEGER NOT NULL, at INTEGER NOT NULL);
`;

/** Refused writes remembered per session (the newest). */
export const MAX_REFUSALS = Limits.MAX_REFUSALS_KEPT;

/** A session is remembered this long after its last write. */
const SESSION_TTL_MS = 7 * 24 * 3600 * 1000;
/** Stale sessions are looked for at most this often (by a write). */
const PRUNE_EVERY_MS = 3600 * 1000;

export class Sessions {
  #sql: SqlStorage;
  #schema: Schema;
  #prunedAt: number | undefined;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
    this.#schema = new Schema(sql, "sessions", SCHEMA, { added: ["sessions_meta", "session_refusals", "session_refusals_forgotten"] });
  }

  // Whether any refusal may be stored (false once a look found none): a
  // HELLO reads the refusals table only then.
  #anyRefusals: boolean | undefined;

  /** Creates the tables and forgets stale sessions (at most once per PRUNE_EVERY_MS); returns the time. */
  #write(): number {
    this.#schema.create();
    const now = Date.now();
    if (this.#prunedAt === undefined) {
      this.#prunedAt = this.#sql.exec<{ n: number }>("SELECT n FROM sessions_meta WHERE name = 'pruned_at'").toArray()[0]?.n ?? 0;
    }
    if (now - this.#prunedAt > PRUNE_EVERY_MS) {
      this.#prunedAt = now;
      this.#sql.exec("DELETE FROM sessions WHERE at < ?", now - SESSION_TTL_MS);
      this.#sql.exec("DELETE FROM session_refusals WHERE at < ?", now - SESSION_TTL_MS);
      this.#sql.exec("DELETE FROM session_refusals_forgotten WHERE at < ?", now - SESSION_TTL_MS);
      this.#sql.exec("INSERT INTO sessions_meta (name, n) VALUES ('pruned_at', ?) ON CONFLICT (name) DO UPDATE SET n = excluded.n", now);
    }
    return now;
  }

  // The write recorded last: one that fails after it was applied (a later
  // step of its handling) is not a refusal.
  #last: { session: string; seq: number } | undefined;

  /** Whether write `seq` of `session` is the one recorded last (in this event: it was applied). */
  recorded(session: string, seq: number): boolean {
    return this.#last?.session === session && this.#last.seq === seq;
  }

  /** Records write `seq` of `session`; call it in the same event as the write. */
  record(session: string, seq: number): void {
    this.#last = { session, seq };
    const now = this.#write();
    this.#sql.exec(
      "INSERT INTO sessions (session, seq, at) VALUES (?, ?, ?) ON CONFLICT (session) DO UPDATE SET seq = excluded.seq, at = excluded.at",
      session, seq, now,
    );
  }

  /** Records that write `seq` of `session` was refused with `code` and `message`. */
  refuse(session: string, seq: number, code: string, message: string): void {
    const now = this.#write();
    this.#sql.exec("INSERT OR REPLACE INTO session_refusals (session, seq, code, message, at) VALUES (?, ?, ?, ?, ?)", session, seq, code, message, now);
    const newestForgotten = this.#sql.exec<{ seq: number }>(
      "SELECT seq FROM session_refusals WHERE session = ? ORDER BY seq DESC LIMIT 1 OFFSET ?", session, MAX_REFUSALS,
    ).toArray()[0]?.seq;
    if (newestForgotten !== undefined) {
      const { first } = this.#sql.exec<{ first: number }>("SELECT min(seq) AS first FROM session_refusals WHERE session = ?", session).one();
      this.#sql.exec("DELETE FROM session_refusals WHERE session = ? AND seq <= ?", session, newestForgotten);
      this.#sql.exec(
        `INSERT INTO session_refusals_forgotten (session, first, upto, at) VALUES (?, ?, ?, ?)
         ON CONFLICT (session) DO UPDATE SET first = min(first, excluded.first), upto = max(upto, excluded.upto), at = excluded.at`,
        session, first, newestForgotten, now,
      );
    }
    this.#anyRefusals = true;
  }

  /**
   * The refusals of `session` from write `from` on (the handle's oldest write
   * in flight; none: no write in flight), and the first and last writes
   * among which refusals were forgotten (see MAX_REFUSALS), if the last is
   * `from` or later. Those below `from` are forgotten now: the handle has the
   * outcome of every write below it.
   */
  refusals(session: string, from: number | undefined): { refused: [number, string, string][]; forgotten?: [number, number] } {
    if (this.#anyRefusals === false || !this.#schema.exists) return { refused: [] };
    const rows = this.#sql.exec<{ seq: number; code: string; message: string }>(
      "SELECT seq, code, message FROM session_refusals WHERE session = ? ORDER BY seq", session,
    ).toArray();
    const mark = this.#sql.exec<{ first: number; upto: number }>("SELECT first, upto FROM session_refusals_forgotten WHERE session = ?", session).toArray()[0];
    if (rows.length === 0 && !mark) {
      this.#anyRefusals ??= this.#sql.exec("SELECT 1 FROM session_refusals LIMIT 1").toArray().length > 0;
      return { refused: [] };
    }
    const keep = from ?? Number.MAX_SAFE_INTEGER;
    if (rows.length > 0 && rows[0].seq < keep) this.#sql.exec("DELETE FROM session_refusals WHERE session = ? AND seq < ?", session, keep);
    if (mark && mark.upto < keep) this.#sql.exec("DELETE FROM session_refusals_forgotten WHERE session = ?", session);
    const refused = rows.filter((r) => r.seq >= keep).map((r): [number, string, string] => [r.seq, r.code, r.message]);
    return mark && mark.upto >= keep ? { refused, forgotten: [mark.first, mark.upto] } : { refused };
  }

  /** The last applied write of `session` (0: none). */
  lastSeq(session: string): number {
    if (!this.#schema.exists) return 0;
    const row = this.#sql.exec<{ seq: number; at: number }>("SELECT seq, at FROM sessions WHERE session = ?", session).toArray()[0];
    // A stale session not pruned yet is forgotten all the same.
    return row && row.at >= Date.now() - SESSION_TTL_MS ? row.seq : 0;
  }
}
