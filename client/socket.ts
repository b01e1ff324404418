// A WebSocket that reconnects with backoff: what the library used of
// partysocket's ReconnectingWebSocket, written out here for two measured
// reasons (2026-11-25, see BENCHMARKS.md): partysocket/ws was 8.4 KB minified
// (2.4 KB gzipped) of a browser bundle budgeted at 20 KB that it took to
// 21.5 KB, and it opens even the first socket only after a timer and an
// async URL step: 1.3 ms of a 12-15 ms Client.connect. Kept: exponential
// backoff with jitter, a connect timeout, the backoff reset after a stable
// connection, and sends dropped while not open (the caller queues and replays its own requests). Added: a
// heartbeat. A link can die without a close: a network drops a flow that
// stayed idle a minute or two (Cloudflare's edge does), or a peer vanishes,
// and the socket still reads as open while what is sent goes nowhere. So a
// socket sends PING as it opens and every `heartbeat` ms after (the object's
// runtime answers, without waking the object), and one that has heard
// nothing by its third heartbeat since it last heard anything (40-60 s with
// the handles' 20 s) is given up, and reconnects.
import { after } from "./delays.js";
import { PING } from "./protocol.js";

export interface SocketHandlers {
  /**
   * The socket opened. If it returns a promise that rejects (its handshake
   * could not start), that socket is given up at once, as on a timeout, and
   * a reconnect follows, backing off. (Not by closing it and waiting for its
   * close event: that waits for the object's own close frame, which a close
   * without a code does not get from partyserver, so the socket hung until
   * the heartbeat gave it up, 40-60 s.)
   */
  open(): Promise<unknown> | void;
  message(data: unknown): void;
  /** The socket closed or failed; a reconnect follows unless the handler calls close(). Not called for close(). */
  close(code: number, reason: string): void;
}

const MIN_DELAY_MS = 100;
const MAX_DELAY_MS = 10_000;
const GROW = 1.5;
/** Reconnects spread over this much more, so that clients cut off at once do not come back at once. */
const JITTER_MS = 300;
const CONNECT_TIMEOUT_MS = 5_000;
/** A connection that lasted this long after its handshake (see `helloed`) resets the backoff. */
const STABLE_MS = 1_000;

export class ReconnectingSocket {
  #url: string;
  #on: SocketHandlers;
  #ws: WebSocket | null = null;
  #failures = 0;
  /** The next reconnect, the connect timeout of the socket under way, or the open socket's next heartbeat. */
  #retry: ReturnType<typeof setTimeout> | undefined;
  #stable: ReturnType<typeof setTimeout> | undefined;
  #heartbeat: number;
  #closed = false;

  /** `heartbeat`: ms between pings, after the first at open (over 2^31 - 1: that one only). */
  constructor(url: string, on: SocketHandlers, heartbeat: number) {
    this.#url = url;
    this.#on = on;
    this.#heartbeat = heartbeat;
    this.#open();
  }

  #open(): void {
    if (this.#closed) return;
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.#url);
    } catch {
      return this.#reconnect();
    }
    ws.binaryType = "arraybuffer";
    this.#ws = ws;
    // In #retry (idle while a socket is under way), like the heartbeat once it is open: close() clears it too.
    this.#retry = setTimeout(() => drop(1006, "timeout"), CONNECT_TIMEOUT_MS);
    // This socket is done (closed, failed or timed out): report it, then retry.
    const drop = (code: number, reason: string) => {
      if (this.#ws !== ws) return;
      this.#detach(ws);
      try {
        ws.close();
      } catch {
        // already closed
      }
      clearTimeout(this.#retry);
      clearTimeout(this.#stable);
      this.#on.close(code, reason);
      this.#reconnect();
    };
    // Heartbeats since this socket last heard anything: given up at the third
    // (40-60 s of silence, with pings every 20 s), not the second, so that
    // one message that takes a slow link most of a minute to carry (the
    // answer to a ping waits behind it), or a stalled event loop, is not
    // taken for a dead link.
    let silent = 0;
    const beat = (): unknown => (this.#retry = after(this.#heartbeat, () => (silent++ < 2 ? (ws.send(PING), beat()) : drop(1006, "timeout"))));
    ws.onopen = () => {
      clearTimeout(this.#retry);
      // A first ping at once: the object's runtime notes its time, and from then
      // on takes this socket for dead if its pings stop (one that never pinged
      // is an older library's, which it leaves alone: so would be this one, had
      // its link died before the first interval).
      ws.send(PING);
      beat();
      (this.#on.open() as Promise<unknown> | undefined)?.catch(() => drop(1006, ""));
    };
    ws.onmessage = (event) => {
      silent = 0;
      this.#on.message(event.data);
    };
    ws.onclose = (event) => drop(event.code, event.reason);
    ws.onerror = () => drop(1006, "");
  }

  #detach(ws: WebSocket): void {
    this.#ws = null;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
  }

  #reconnect(): void {
    if (this.#closed) return;
    const delay = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * GROW ** this.#failures++) + Math.random() * JITTER_MS;
    this.#retry = setTimeout(() => this.#open(), delay);
  }

  /**
   * The socket's handshake (HELLO) succeeded: the backoff resets if it then
   * lasts STABLE_MS. Not on open: an object that accepts sockets but fails
   * their HELLO would otherwise see every client come back at full speed.
   */
  helloed(): void {
    this.#stable = setTimeout(() => (this.#failures = 0), STABLE_MS);
  }

  /** Sends now, or drops `data` when no socket is open. */
  send(data: Uint8Array<ArrayBuffer>): void {
    if (this.#ws?.readyState === 1) this.#ws.send(data);
  }

  /** Closes for good: no reconnect, no close handler call. */
  close(code: number, reason?: string): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    clearTimeout(this.#stable);
    const ws = this.#ws;
    if (!ws) return;
    this.#detach(ws);
    try {
      ws.close(code, reason);
    } catch {
      // already closing
    }
  }
}
