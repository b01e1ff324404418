// Helpers for the workerd-side tests: real WebSockets into the worker entry,
// speaking the wire protocol frame by frame (no client library in between),
// so every test sees exactly what the worker sends.
import { exports } from "cloudflare:workers";
import {
  Msg, Op, PROTOCOL_VERSION, decodeFrame, encodeFrame, type HelloResult, type Request as Frame, type WireEntry,
} from "../../client/protocol.js";
import { decodeValue } from "../../client/codec.js";

/** The server token the test config binds (test/worker/vitest.config.ts). */
export const SERVER_TOKEN = "test-server-token";

/** How long a test waits for a frame or a close before it fails. */
const WAIT_MS = 5000;

/** A fresh name per test, so tests never share an object's state. */
export function unique(prefix: string): string {
  return `${prefix}-${crypto.randomUUID()}`;
}

/** The worker entry's fetch, as a browser or the client library would reach it. */
export function fetchWorker(path: string, init?: RequestInit): Promise<Response> {
  return exports.default.fetch(new Request(`http://x${path}`, init));
}

export const spacePath = (space: string, role: "client" | "server", id?: string): string =>
  `/v1/spaces/${encodeURIComponent(space)}/ws?role=${role}${id === undefined ? "" : `&id=${encodeURIComponent(id)}`}`;

export const clientPath = (space: string, id: string, role: "client" | "server"): string =>
  `/v1/spaces/${encodeURIComponent(space)}/clients/${encodeURIComponent(id)}/ws?role=${role}`;

export type Received = unknown[];

export interface Closed {
  code: number;
  reason: string;
}

export interface HelloReply {
  /** The REPLY or ERROR frame that ended the handshake. */
  reply: Received;
  /** The SNAPSHOT chunks that came before it. */
  chunks: WireEntry[][];
  /** The REPLY's result (undefined after an ERROR). */
  result?: HelloResult;
}

/** One accepted WebSocket into the worker, with an inbox of decoded frames. */
export class Wire {
  /** Every frame received so far, decoded, in arrival order. */
  readonly frames: Received[] = [];
  /** The encoded size in bytes of each frame in `frames`, at the same index. */
  readonly sizes: number[] = [];
  /** Resolves when the worker closes the socket. */
  readonly closed: Promise<Closed>;
  #closedWith?: Closed;
  #wake = new Set<() => void>();
  #nextId = 1;

  private constructor(readonly ws: WebSocket) {
    ws.addEventListener("message", (event) => {
      const data = event.data;
      // The worker only ever sends binary frames; a text frame would be a bug worth seeing.
      this.frames.push(typeof data === "string" ? ["TEXT", data] : (decodeFrame(data as ArrayBuffer) as Received));
      this.sizes.push(typeof data === "string" ? data.length : (data as ArrayBuffer).byteLength);
      this.#notify();
    });
    this.closed = new Promise((resolve) => {
      ws.addEventListener("close", (event) => {
        this.#closedWith = { code: event.code, reason: event.reason };
        resolve(this.#closedWith);
        this.#notify();
      });
    });
  }

  /** Opens a WebSocket to `path` through the worker entry; fails unless the worker upgrades. */
  static async open(path: string): Promise<Wire> {
    const response = await fetchWorker(path, { headers: { Upgrade: "websocket" } });
    if (response.status !== 101 || !response.webSocket) {
      throw new Error(`expected a WebSocket upgrade on ${path}, got ${response.status}: ${await response.text()}`);
    }
    // workerd hands binary messages over as Blobs unless told otherwise.
    response.webSocket.binaryType = "arraybuffer";
    response.webSocket.accept();
    return new Wire(response.webSocket);
  }

  /** Opens a socket and completes HELLO; fails unless HELLO succeeds. */
  static async ready(path: string, hello: Record<string, unknown> = {}): Promise<Wire & { hello: HelloReply }> {
    const wire = await Wire.open(path);
    const reply = await wire.hello(hello);
    if (reply.reply[0] !== Msg.REPLY) throw new Error(`HELLO failed: ${JSON.stringify(reply.reply)}`);
    return Object.assign(wire, { hello: reply });
  }

  #notify(): void {
    for (const wake of this.#wake) wake();
  }

  /** A request id not used yet on this socket. */
  id(): number {
    return this.#nextId++;
  }

  /** Sends any array as a CBOR frame (also frames the protocol does not allow). */
  send(frame: Frame | unknown[]): void {
    this.ws.send(encodeFrame(frame as Frame));
  }

  /** Sends raw bytes or text, bypassing the frame codec. */
  sendRaw(data: Uint8Array | string): void {
    this.ws.send(data);
  }

  /**
   * Waits until a frame matching `match` has arrived and returns the first one.
   * Fails after a deadline, or at once if the socket closed without it.
   */
  waitFor(match: (frame: Received) => boolean, what = "a matching frame"): Promise<Received> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`timed out waiting for ${what}; got ${this.describe()}`)), WAIT_MS);
      const finish = (outcome: Received | Error) => {
        clearTimeout(timer);
        this.#wake.delete(check);
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      };
      const check = () => {
        const found = this.frames.find(match);
        if (found) return finish(found);
        if (this.#closedWith) finish(new Error(`socket closed (${this.#closedWith.code}) before ${what}; got ${this.describe()}`));
      };
      this.#wake.add(check);
      check();
    });
  }

  /** The REPLY or ERROR that answers request `id`. */
  reply(id: number): Promise<Received> {
    return this.waitFor((f) => (f[0] === Msg.REPLY || f[0] === Msg.ERROR) && f[1] === id, `the reply to request ${id}`);
  }

  /** Sends a request with a fresh id and waits for its REPLY or ERROR. */
  async request(op: number, ...args: unknown[]): Promise<Received> {
    const id = this.id();
    this.send([op, id, ...args]);
    return this.reply(id);
  }

  /** HELLO with protocol version, a fresh session and `fields` on top. */
  async hello(fields: Record<string, unknown> = {}): Promise<HelloReply> {
    const id = this.id();
    this.send([Op.HELLO, id, { v: PROTOCOL_VERSION, session: crypto.randomUUID(), ...fields }]);
    const reply = await this.reply(id);
    const chunks = this.frames.filter((f) => f[0] === Msg.SNAPSHOT && f[1] === id).map((f) => f[2] as WireEntry[]);
    return { reply, chunks, result: reply[0] === Msg.REPLY ? (reply[2] as HelloResult) : undefined };
  }

  /** Sets `key` to the encoded `value` and waits for the answer. */
  set(key: string, value: Uint8Array): Promise<Received> {
    return this.request(Op.DICT_SET, key, value);
  }

  /** CHANGE frames received so far. */
  changes(): Received[] {
    return this.frames.filter((f) => f[0] === Msg.CHANGE);
  }

  describe(): string {
    return JSON.stringify(this.frames.map((f) => f.slice(0, 4)), (_k, v) => (v instanceof Uint8Array ? `<${v.byteLength} bytes>` : v));
  }

  close(): void {
    this.ws.close(1000, "test done");
  }
}

/** A snapshot's chunks as a plain object of decoded values (null for a tombstone). */
export function entriesOf(chunks: WireEntry[][]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const chunk of chunks) {
    for (const [key, value] of chunk) out[key] = value === null ? null : decodeValue(value);
  }
  return out;
}
