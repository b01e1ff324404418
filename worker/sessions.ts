// The last write request id each session (one client-library handle) had
// applied by this object. A handle that reconnects learns it from HELLO and
// does not send those writes again, so a write is applied once even when its
// reply was lost with the connection.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS sessions (session TEXT PRIMARY KEY, seq INTEGER NOT NULL, at INTEGER NOT NULL);
`;

/** A session is remembered this long after its last write. */
const SESSION_TTL_MS = 7 * 24 * 3600 * 1000;

export class Sessions {
  #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
    sql.exec(SCHEMA);
  }

  /** Records write `seq` of `session`; call it in the same event as the write. */
  record(session: string, seq: number): void {
    this.#sql.exec(
      "INSERT INTO sessions (session, seq, at) VALUES (?, ?, ?) ON CONFLICT (session) DO UPDATE SET seq = excluded.seq, at = excluded.at",
      session, seq, Date.now(),
    );
  }

  /** The last applied write of `session` (0: none); forgets stale sessions on the way. */
  lastSeq(session: string): number {
    this.#sql.exec("DELETE FROM sessions WHERE at < ?", Date.now() - SESSION_TTL_MS);
    const row = this.#sql.exec<{ seq: number }>("SELECT seq FROM sessions WHERE session = ?", session).toArray()[0];
    return row ? row.seq : 0;
  }
}
