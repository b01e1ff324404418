// The reconnect backoff of client/socket.ts against an endpoint that accepts
// sockets but never completes their handshake (an object failing every
// HELLO after a while): the delays between attempts must grow. The
// transport here is a stand-in that opens and closes on a schedule; what is
// tested is the library's own timing.
import { afterEach, expect, test } from "vitest";
import { ReconnectingSocket } from "../../client/socket.js";

const RealWebSocket = globalThis.WebSocket;
afterEach(() => {
  globalThis.WebSocket = RealWebSocket;
});

/** A socket that opens at once and is closed by its far end (code 4000) after `lifeMs`. */
function flakyWebSocket(lifeMs: number, opened: number[]) {
  return class {
    binaryType = "blob";
    readyState = 0;
    onopen: (() => void) | null = null;
    onclose: ((event: { code: number; reason: string }) => void) | null = null;
    onmessage: unknown = null;
    onerror: unknown = null;
    constructor() {
      opened.push(performance.now());
      setTimeout(() => {
        this.readyState = 1;
        this.onopen?.();
        setTimeout(() => {
          this.readyState = 3;
          this.onclose?.({ code: 4000, reason: "HELLO failed" });
        }, lifeMs);
      }, 0);
    }
    send() {}
    close() {
      this.readyState = 3;
    }
  };
}

test("sockets that open but never complete a handshake back off more each time, even when each lasted over a second", async () => {
  const opened: number[] = [];
  globalThis.WebSocket = flakyWebSocket(1100, opened) as unknown as typeof WebSocket;
  const closes: number[] = [];
  const socket = new ReconnectingSocket("ws://127.0.0.1:9/", {
    open() {}, // no HELLO ever succeeds, so helloed() is never called
    message() {},
    close: () => void closes.push(performance.now()),
  }, Infinity); // no heartbeat (but the ping at open)
  const waitFor = async (n: number) => {
    while (opened.length < n) await new Promise((r) => setTimeout(r, 20));
  };
  await waitFor(7);
  socket.close(1000, "done");
  // The delay before attempt k+1 is 100 ms × 1.5^k plus up to 300 ms of jitter.
  const delays = closes.slice(0, 6).map((at, k) => opened[k + 1] - at);
  expect(delays[5]).toBeGreaterThan(100 * 1.5 ** 5 - 20);
  expect(delays[4]).toBeGreaterThan(100 * 1.5 ** 4 - 20);
}, 30_000);

test("a socket whose handshake succeeded and lasted a second resets the backoff", async () => {
  const opened: number[] = [];
  globalThis.WebSocket = flakyWebSocket(1300, opened) as unknown as typeof WebSocket;
  const closes: number[] = [];
  let socket: ReconnectingSocket;
  let attempt = 0;
  socket = new ReconnectingSocket("ws://127.0.0.1:9/", {
    open: () => {
      if (++attempt >= 4) socket.helloed(); // from the 4th on, each handshake succeeds
    },
    message() {},
    close: () => void closes.push(performance.now()),
  }, Infinity); // no heartbeat (but the ping at open)
  while (opened.length < 6) await new Promise((r) => setTimeout(r, 20));
  socket.close(1000, "done");
  // After the 4th socket lasted a second past its handshake, the next delay starts over.
  expect(opened[4] - closes[3]).toBeLessThan(100 + 300 + 50);
}, 30_000);
