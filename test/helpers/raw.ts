// A raw protocol socket that bypasses the client library's checks, to test
// what the worker itself enforces.
import { Msg, Op, PROTOCOL_VERSION, decodeFrame, encodeFrame, type Request } from "../../client/protocol.js";

export interface RawSocket {
  ws: WebSocket;
  /** Every frame received so far, decoded. */
  frames: unknown[][];
  closed: Promise<{ code: number; reason: string }>;
  send(frame: Request | unknown[]): void;
  sendBytes(bytes: Uint8Array | string): void;
  /** The next frame that answers request `id` (REPLY or ERROR). */
  reply(id: number, timeout?: number): Promise<unknown[]>;
  hello(fields?: Record<string, unknown>, id?: number): Promise<unknown[]>;
  close(): void;
}

export async function rawSocket(baseUrl: string, path: string): Promise<RawSocket> {
  const url = baseUrl.replace(/^http/, "ws") + path;
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const frames: unknown[][] = [];
  const waiters = new Set<() => void>();
  ws.addEventListener("message", (event) => {
    frames.push(decodeFrame(event.data as ArrayBuffer) as unknown[]);
    for (const waiter of waiters) waiter();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.addEventListener("close", (event) => {
      resolve({ code: event.code, reason: event.reason });
      for (const waiter of waiters) waiter();
    }));
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve(), { once: true });
    ws.addEventListener("error", () => reject(new Error(`could not open ${url}`)), { once: true });
  });
  const socket: RawSocket = {
    ws,
    frames,
    closed,
    send: (frame) => ws.send(encodeFrame(frame as Request)),
    sendBytes: (bytes) => ws.send(bytes),
    reply(id, timeout = 5000) {
      const find = () => frames.find((f) => (f[0] === Msg.REPLY || f[0] === Msg.ERROR) && f[1] === id);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no reply to ${id}; got ${JSON.stringify(frames.map((f) => f.slice(0, 3)))}`));
        }, timeout);
        const check = () => {
          const found = find();
          if (!found) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(found);
        };
        waiters.add(check);
        check();
      });
    },
    hello(fields = {}, id = 1) {
      socket.send([Op.HELLO, id, { v: PROTOCOL_VERSION, session: `raw-${Math.random().toString(36).slice(2)}`, ...fields }]);
      return socket.reply(id);
    },
    close: () => ws.close(),
  };
  return socket;
}
