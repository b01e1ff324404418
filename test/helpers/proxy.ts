// A TCP proxy in front of the local worker that can cut every connection
// through it at once (a reset, as when a network drops): faults happen on
// the wire, and the library under test is not touched.
import { createServer, connect, type Socket } from "node:net";

export interface FaultyLink {
  url: string;
  /** Destroys every open connection through the proxy (or those whose request line contains `path`); returns how many. */
  cut(path?: string): number;
  /** An outage: cuts everything and refuses new connections until up(). */
  down(): void;
  up(): void;
  /** Every chunk through the proxy, either way, arrives `ms` later (a slow network). */
  latency(ms: number): void;
  /** Keeps what the worker sends until release(), which delivers it in one write (a burst, one TCP chunk). */
  hold(): void;
  release(): void;
  /** Bytes the worker sent through the proxy so far. */
  readonly bytesDown: number;
  /** Connections open now. */
  readonly open: number;
  close(): Promise<void>;
}

/**
 * `compression: false` takes permessage-deflate out of each WebSocket upgrade
 * request, as a client or an edge that does not offer it: with it, Node's
 * WebSocket inflates each message on its own turn, and messages that arrive
 * together are never handled in one go.
 */
export async function faultyLink(targetUrl: string, { compression = true } = {}): Promise<FaultyLink> {
  const target = new URL(targetUrl);
  const pairs = new Set<[Socket, Socket]>();
  /** Each connection's first line (the WebSocket upgrade request: "GET /v1/... HTTP/1.1"). */
  const requestLines = new Map<Socket, string>();
  let isDown = false;
  let bytesDown = 0;
  let latency = 0;
  let holding = false;
  const held = new Map<Socket, Buffer[]>();
  // Chunks keep their order, whatever the latency does meanwhile (a chunk
  // never overtakes an earlier one still waiting: a TCP stream whose bytes
  // were reordered would be garbage to the WebSocket reading it), and a hold
  // queues behind them.
  const queues = new Map<Socket, { chunks: { chunk: Buffer; due: number }[]; timer?: ReturnType<typeof setTimeout> }>();
  const pump = (to: Socket) => {
    const queue = queues.get(to);
    if (!queue) return;
    clearTimeout(queue.timer);
    const now = Date.now();
    const ready: Buffer[] = [];
    while (queue.chunks.length > 0 && queue.chunks[0].due <= now) ready.push(queue.chunks.shift()!.chunk);
    if (ready.length > 0 && !to.destroyed) to.write(ready.length === 1 ? ready[0] : Buffer.concat(ready));
    if (queue.chunks.length > 0) queue.timer = setTimeout(() => pump(to), queue.chunks[0].due - now);
  };
  const send = (to: Socket, chunk: Buffer) => {
    let queue = queues.get(to);
    if (!queue) queues.set(to, (queue = { chunks: [] }));
    if (latency === 0 && queue.chunks.length === 0) return void to.write(chunk);
    queue.chunks.push({ chunk, due: Date.now() + latency });
    if (queue.chunks.length === 1) pump(to);
  };
  const forward = (from: Socket, to: Socket) => from.on("data", (chunk: Buffer) => send(to, chunk));
  const server = createServer((incoming) => {
    if (isDown) {
      incoming.resetAndDestroy();
      return;
    }
    const outgoing = connect(Number(target.port), target.hostname);
    incoming.once("data", (chunk: Buffer) => requestLines.set(incoming, chunk.toString("latin1").split("\r\n")[0]));
    outgoing.on("data", (chunk: Buffer) => (bytesDown += chunk.length));
    const pair: [Socket, Socket] = [incoming, outgoing];
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      held.delete(incoming);
      clearTimeout(queues.get(incoming)?.timer);
      clearTimeout(queues.get(outgoing)?.timer);
      queues.delete(incoming);
      queues.delete(outgoing);
      requestLines.delete(incoming);
      incoming.destroy();
      outgoing.destroy();
    };
    incoming.on("error", drop).on("close", drop);
    outgoing.on("error", drop).on("close", drop);
    if (compression) forward(incoming, outgoing);
    else {
      let first = true;
      incoming.on("data", (chunk: Buffer) => {
        if (first) chunk = Buffer.from(chunk.toString("latin1").replace(/\r\nSec-WebSocket-Extensions:[^\r]*/i, ""), "latin1");
        first = false;
        send(outgoing, chunk);
      });
    }
    outgoing.on("data", (chunk: Buffer) => {
      if (!holding) return send(incoming, chunk);
      const chunks = held.get(incoming) ?? [];
      held.set(incoming, chunks);
      chunks.push(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const cut = (path?: string) => {
    let n = 0;
    for (const pair of [...pairs]) {
      const [incoming, outgoing] = pair;
      if (path !== undefined && !requestLines.get(incoming)?.includes(path)) continue;
      incoming.resetAndDestroy();
      outgoing.destroy();
      pairs.delete(pair);
      n++;
    }
    return n;
  };
  return {
    url: `http://127.0.0.1:${port}`,
    cut,
    down() {
      isDown = true;
      cut();
    },
    up() {
      isDown = false;
    },
    latency(ms: number) {
      latency = ms;
    },
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      // Behind what was still on its way (delayed) before the hold, all in one write.
      for (const [socket, chunks] of held) {
        const queue = queues.get(socket);
        chunks.unshift(...(queue?.chunks.splice(0) ?? []).map(({ chunk }) => chunk));
        clearTimeout(queue?.timer);
        if (!socket.destroyed) socket.write(Buffer.concat(chunks));
      }
      held.clear();
    },
    get bytesDown() {
      return bytesDown;
    },
    get open() {
      return pairs.size;
    },
    async close() {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
