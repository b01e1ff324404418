// The last write request id each session (one client-library handle) had
// applied by this object. A handle that reconnects learns it from HELLO and
// does not send those writes again, so a write is applied once even when its
// reply was lost with the connection.
//
// Reading it (every HELLO) writes nothing (but, once, a table a later version
// added; see schema.ts): the table is created by the first
// write (see schema.ts), and stale sessions are forgotten by a write, at most
// once per PRUNE_EVERY_MS, not by the HELLO that reads. The time of the last
// prune is stored: it reads every session, and an object that sleeps between
// writes would otherwise do it on the first write after every wake.
import { Schema } from "./schema.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS sessions (session TEXT PRIMARY KEY, seq INTEGER NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions_meta (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
`;

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
    this.#schema = new Schema(sql, "sessions", SCHEMA, { added: ["sessions_meta"] });
  }

  /** Records write `seq` of `session`; call it in the same event as the write. */
  record(session: string, seq: number): void {
    this.#schema.create();
    const now = Date.now();
    if (this.#prunedAt === undefined) {
      this.#prunedAt = this.#sql.exec<{ n: number }>("SELECT n FROM sessions_meta WHERE name = 'pruned_at'").toArray()[0]?.n ?? 0;
    }
    if (now - this.#prunedAt > PRUNE_EVERY_MS) {
      this.#prunedAt = now;
      this.#sql.exec("DELETE FROM sessions WHERE at < ?", now - SESSION_TTL_MS);
      this.#sql.exec("INSERT INTO sessions_meta (name, n) VALUES ('pruned_at', ?) ON CONFLICT (name) DO UPDATE SET n = excluded.n", now);
    }
    this.#sql.exec(
      "INSERT INTO sessions (session, seq, at) VALUES (?, ?, ?) ON CONFLICT (session) DO UPDATE SET seq = excluded.seq, at = excluded.at",
      session, seq, now,
    );
  }

  /** The last applied write of `session` (0: none). */
  lastSeq(session: string): number {
    if (!this.#schema.exists) return 0;
    const row = this.#sql.exec<{ seq: number; at: number }>("SELECT seq, at FROM sessions WHERE session = ?", session).toArray()[0];
    // A stale session not pruned yet is forgotten all the same.
    return row && row.at >= Date.now() - SESSION_TTL_MS ? row.seq : 0;
  }
}
