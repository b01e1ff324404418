// The benchmark's baseline: a bare Durable Object with the WebSocket
// Hibernation API and nothing else (bench only; not part of the product).
// The first byte of a message picks what it does:
//   0 echo it back · 1 one SQLite insert + select + delete, then reply (like a
//   queue put and get) · 2 send it to every socket of the object (broadcast)
import { DurableObject } from "cloudflare:workers";

export class BareObject extends DurableObject {
  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env as never);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS q (seq INTEGER PRIMARY KEY AUTOINCREMENT, v BLOB NOT NULL)");
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
    } else if (bytes[0] === 2) {
      for (const socket of this.ctx.getWebSockets()) socket.send(message);
    } else {
      ws.send(message);
    }
  }
}
