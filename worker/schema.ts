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

  /**
   * `table`: one table the DDL creates, looked up to tell whether it ran.
   * `legacy`: the table of an earlier layout, whose rows are moved into this
   * one the first time either is looked up.
   */
  constructor(sql: SqlStorage, table: string, ddl: string, legacy?: Legacy) {
    this.#sql = sql;
    this.#table = table;
    this.#ddl = ddl;
    this.#legacy = legacy;
  }

  get exists(): boolean {
    if (this.#exists === undefined) {
      const names = new Set<string>();
      for (const { name } of this.#sql.exec<{ name: string }>(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)", this.#table, this.#legacy?.table ?? this.#table,
      )) names.add(name);
      this.#exists = names.has(this.#table);
      if (this.#legacy && names.has(this.#legacy.table)) {
        this.#legacy.upgrade(() => this.#sql.exec(this.#ddl), this.#exists);
        this.#exists = true;
      }
    }
    return this.#exists;
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

/**
 * Runs `ddl` (of CREATE ... IF NOT EXISTS statements) unless every one of
 * `names` (tables or indexes) exists: a read, where the DDL itself, even with
 * nothing to create, is a statement that writes.
 */
export function ensure(sql: SqlStorage, names: string[], ddl: string): void {
  const found = sql.exec<{ n: number }>(
    `SELECT count(*) AS n FROM sqlite_master WHERE name IN (${names.map(() => "?").join(", ")})`, ...names,
  ).one().n;
  if (found < names.length) sql.exec(ddl);
}
