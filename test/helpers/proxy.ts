// A TCP proxy in front of the local worker that can cut every connection
// through it at once (a reset, as when a network drops): faults happen on
// the wire, and the library under test is not touched.
import { createServer, connect, type Socket } from "node:net";

export interface FaultyLink {
  url: string;
  /** Destroys every open connection through the proxy; returns how many. */
  cut(): number;
  /** An outage: cuts everything and refuses new connections until up(). */
  down(): void;
  up(): void;
  /** Every chunk through the proxy, either way, arrives `ms` later (a slow network). */
  latency(ms: number): void;
  /** Bytes the worker sent through the proxy so far. */
  readonly bytesDown: number;
  /** Connections open now. */
  readonly open: number;
  close(): Promise<void>;
}

export async function faultyLink(targetUrl: string): Promise<FaultyLink> {
  const target = new URL(targetUrl);
  const pairs = new Set<[Socket, Socket]>();
  let isDown = false;
  let bytesDown = 0;
  let latency = 0;
  // Chunks keep their order: each waits the same time, and timers of equal delay fire in order.
  const forward = (from: Socket, to: Socket) =>
    from.on("data", (chunk: Buffer) => {
      if (latency === 0) to.write(chunk);
      else setTimeout(() => to.destroyed || to.write(chunk), latency);
    });
  const server = createServer((incoming) => {
    if (isDown) {
      incoming.resetAndDestroy();
      return;
    }
    const outgoing = connect(Number(target.port), target.hostname);
    outgoing.on("data", (chunk: Buffer) => (bytesDown += chunk.length));
    const pair: [Socket, Socket] = [incoming, outgoing];
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      incoming.destroy();
      outgoing.destroy();
    };
    incoming.on("error", drop).on("close", drop);
    outgoing.on("error", drop).on("close", drop);
    forward(incoming, outgoing);
    forward(outgoing, incoming);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const cut = () => {
    const n = pairs.size;
    for (const [incoming, outgoing] of [...pairs]) {
      incoming.resetAndDestroy();
      outgoing.destroy();
    }
    pairs.clear();
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
