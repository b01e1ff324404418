// A mechanism's tables, created by its first write rather than on every
// start: an object that never used a queue (or a dict, or sessions) reads
// nothing and writes nothing for it, and a HELLO on a fresh object commits
// nothing. Whether the tables exist is read from sqlite_master once per
// instance (so it holds after hibernation and restarts).
export class Schema {
  #sql: SqlStorage;
  #ddl: string;
  #table: string;
  #exists: boolean | undefined;

  /** `table`: one table the DDL creates, looked up to tell whether it ran. */
  constructor(sql: SqlStorage, table: string, ddl: string) {
    this.#sql = sql;
    this.#table = table;
    this.#ddl = ddl;
  }

  get exists(): boolean {
    return (this.#exists ??= this.#sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", this.#table).toArray().length > 0);
  }

  /** Creates the tables unless they exist; call it before a write. */
  create(): void {
    if (this.exists) return;
    this.#sql.exec(this.#ddl);
    this.#exists = true;
  }
}
