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
  #legacy: Legacy | undefined;
  #added: string[];
  #columns: Record<string, string>;
  #altered = false;

  /**
   * `table`: one table the DDL creates, looked up to tell whether it ran.
   * `legacy`: the table of an earlier layout, whose rows are moved into this
   * one the first time either is looked up. `added`: tables and indexes of
   * the DDL that later versions added: where the table exists without them,
   * the DDL (all CREATE ... IF NOT EXISTS) runs again on that first look-up.
   * `columns`: columns of `table` that later versions added (name: type and
   * default), added where the table exists without them.
   */
  constructor(sql: SqlStorage, table: string, ddl: string, options: { legacy?: Legacy; added?: string[]; columns?: Record<string, string> } = {}) {
    this.#sql = sql;
    this.#table = table;
    this.#ddl = ddl;
    this.#legacy = options.legacy;
    this.#added = options.added ?? [];
    this.#columns = options.columns ?? {};
  }

  get exists(): boolean {
    if (this.#exists === undefined) {
      const wanted = [this.#table, ...(this.#legacy ? [this.#legacy.table] : []), ...this.#added];
      const names = new Map<string, string>();
      for (const { name, sql } of this.#sql.exec<{ name: string; sql: string }>(
        `SELECT name, sql FROM sqlite_master WHERE name IN (${wanted.map(() => "?").join(", ")})`, ...wanted,
      )) names.set(name, sql);
      this.#exists = names.has(this.#table);
      // (The table's CREATE statement, as sqlite_master keeps it, lists every column, added ones too.)
      for (const [column, type] of Object.entries(this.#columns)) {
        if (this.#exists && !new RegExp(`[(,]\\s*${column}\\s`).test(names.get(this.#table)!)) {
          this.#sql.exec(`ALTER TABLE ${this.#table} ADD COLUMN ${column} ${type}`);
          this.#altered = true;
        }
      }
      if (this.#legacy && names.has(this.#legacy.table)) {
        this.#legacy.upgrade(() => this.#sql.exec(this.#ddl), this.#exists);
        this.#exists = true;
      } else if (this.#exists && this.#added.some((name) => !names.has(name))) {
        this.#sql.exec(this.#ddl);
      }
    }
    return this.#exists;
  }

  /** Whether the first look-up (see exists) added columns to a table of an earlier version. */
  get altered(): boolean {
    return this.exists && this.#altered;
  }

  /** Creates the tables unless they exist; call it before a write. */
  create(): void {
    if (this.exists) return;
    this.#sql.exec(this.#ddl);
    this.#exists = true;
  }
}

/** A table of an earlier layout (see Schema). */
export interface Legacy {
  table: string;
  /**
   * Creates the new tables (`create`), moves the rows over and drops the old
   * table, all or nothing. `alongside`: the new table exists too (an earlier
   * version ran again after an upgrade, and wrote the old table anew).
   */
  upgrade(create: () => void, alongside: boolean): void;
}
