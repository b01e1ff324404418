// The benchmark's baseline: a bare Durable Object with the WebSocket
// Hibernation API and nothing else (bench only; not part of the product).
// The first byte of a message picks what it does:
//   0 echo it back · 1 one SQLite insert + select + delete, then reply (like a
//   queue put and get) · 2 send it to every socket of the object (broadcast)
// and, for the floors of two scenarios (the least any implementation of
// their semantics does: the same messages and statements, nothing else):
//   3 a durable relay (a dict write): upsert a row and the sender's session
//     row, reply to the sender, send the message to every other socket
//   4 a pipe put, acknowledging the previous item (its next receive rides
//     along): delete the oldest item, insert this one and upsert the sender's
//     session row, reply to the sender, deliver the message to the other
//     socket (its waiting receive)
// and, for reference only (not a floor: a change seen before it is stored):
//   5 mode 3's statements and messages, the relay sent before the write
// A reply to the sender (modes 3 and 4) is the single byte REPLIED.
import { DurableObject } from "cloudflare:workers";

/** What modes 3 and 4 answer the sender (bench/run.ts knows it too). */
const REPLIED = 200;

export class BareObject extends DurableObject {
  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env as never);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS q (seq INTEGER PRIMARY KEY AUTOINCREMENT, v BLOB NOT NULL)");
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL)");
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS sessions (session TEXT PRIMARY KEY, seq INTEGER NOT NULL)");
  }

  async fetch(): Promise<Response> {
    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server);
    return new Response(null, { status: 101, webSocket: client });
  }

  webSocketMessage(ws: WebSocket, message: ArrayBuffer | string): void {
    const bytes = typeof message === "string" ? new TextEncoder().encode(message) : new Uint8Array(message);
    if (bytes[0] === 1) {
      const sql = this.ctx.storage.sql;
      sql.exec("INSERT INTO q (v) VALUES (?)", bytes);
      const row = sql.exec<{ seq: number; v: ArrayBuffer }>("SELECT seq, v FROM q ORDER BY seq LIMIT 1").one();
      sql.exec("DELETE FROM q WHERE seq = ?", row.seq);
      ws.send(row.v);
    } else if (bytes[0] === 3 || bytes[0] === 4) {
      const sql = this.ctx.storage.sql;
      if (bytes[0] === 3) {
        sql.exec("INSERT INTO kv (k, v) VALUES ('k', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", bytes);
      } else {
        sql.exec("DELETE FROM q WHERE seq = (SELECT min(seq) FROM q)");
        sql.exec("INSERT INTO q (v) VALUES (?)", bytes);
      }
      sql.exec("INSERT INTO sessions (session, seq) VALUES ('s', ?) ON CONFLICT (session) DO UPDATE SET seq = excluded.seq", bytes[1] | (bytes[2] << 8) | (bytes[3] << 16));
      ws.send(Uint8Array.of(REPLIED));
      for (const other of this.ctx.getWebSockets()) if (other !== ws) other.send(message);
    } else if (bytes[0] === 5) {
      // Sent before the write, so the output gate does not hold it for this
      // event's commit (it still does for an earlier event's commit in flight).
      for (const other of this.ctx.getWebSockets()) if (other !== ws) other.send(message);
      const sql = this.ctx.storage.sql;
      sql.exec("INSERT INTO kv (k, v) VALUES ('k', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", bytes);
      sql.exec("INSERT INTO sessions (session, seq) VALUES ('s', ?) ON CONFLICT (session) DO UPDATE SET seq = excluded.seq", bytes[1] | (bytes[2] << 8) | (bytes[3] << 16));
      ws.send(Uint8Array.of(REPLIED));
    } else if (bytes[0] === 2) {
      for (const socket of this.ctx.getWebSockets()) socket.send(message);
    } else {
      ws.send(message);
    }
  }
}
