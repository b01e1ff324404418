// The heartbeat of client/socket.ts against the real worker: the object's
// runtime answers each PING, so a live link is kept; a link that stops
// delivering without closing (a network that dropped the flow) is given up
// and reconnected. The handles ping every 20 s; here the socket is made with
// a shorter interval so that the test takes seconds, not minutes (half a
// second: the timing margins below are fractions of it, and must outlast a
// busy machine's stalls).
import { expect, test } from "vitest";
import { OP_HELLO, PONG, PROTOCOL_VERSION, encodeFrame } from "../../client/protocol.js";
import { ReconnectingSocket } from "../../client/socket.js";
import { clientObjectUrl } from "../../client/urls.js";
import { uniqueSpace, until, workerUrl } from "../helpers/e2e.js";
import { faultyLink } from "../helpers/proxy.js";

const HEARTBEAT_MS = 500;

test("a live link is kept by its pings, and through two intervals of silence (one slow message); one silent for three is given up and reconnected", async () => {
  const link = await faultyLink(workerUrl());
  const opens: number[] = [];
  const closes: [number, string][] = [];
  let closedAt = 0;
  let pongs = 0;
  /** When the socket last heard anything. */
  let heard = 0;
  let socket: ReconnectingSocket | undefined;
  try {
    socket = new ReconnectingSocket(clientObjectUrl(link.url, uniqueSpace("heartbeat"), "alice", "client"), {
      open: () => {
        opens.push(performance.now());
        // A handle says HELLO at once (the object closes a socket that does not, after a while).
        socket!.send(encodeFrame([OP_HELLO, opens.length, { v: PROTOCOL_VERSION, session: crypto.randomUUID() }]));
      },
      message: (data) => {
        heard = performance.now();
        if (data === PONG) pongs++;
      },
      close: (code, reason) => {
        closedAt = performance.now();
        closes.push([code, reason]);
      },
    }, HEARTBEAT_MS);
    await until(() => opens.length === 1, { what: "the first open" });
    // Six intervals with nothing but pings and their answers: the link is kept.
    await new Promise((r) => setTimeout(r, HEARTBEAT_MS * 6));
    expect(closes).toEqual([]);
    expect(pongs).toBeGreaterThanOrEqual(4);

    // Silences start right after an answer, so the heartbeats fall at known
    // times: the 1st, 2nd and 3rd one interval, two and three after it.
    const afterPong = async () => {
      const n = pongs;
      await until(() => pongs > n, { interval: 1, what: "a pong" });
    };

    // One slow message: nothing arrives for over two intervals (as when a
    // large frame crawls over a slow link, the answers to pings behind it). Kept.
    await afterPong();
    link.hold();
    await new Promise((r) => setTimeout(r, HEARTBEAT_MS * 2.4));
    link.release();
    await afterPong();
    await new Promise((r) => setTimeout(r, HEARTBEAT_MS * 2));
    expect(closes).toEqual([]);

    // The worker's side goes silent for good (its bytes are held on the way, the TCP connection stays up).
    await afterPong();
    link.hold();
    await until(() => closes.length === 1, { timeout: 5000, what: "the silent link given up" });
    expect(closes[0]).toEqual([1006, "timeout"]);
    // Given up at the third heartbeat since it last heard anything (that
    // pong, one round trip after the heartbeat that asked for it): not the
    // second, nor the fourth, give or take this machine's slack.
    expect(closedAt - heard).toBeGreaterThanOrEqual(HEARTBEAT_MS * 2.5);
    expect(closedAt - heard).toBeLessThan(HEARTBEAT_MS * 3.5);
    link.release();
    await until(() => opens.length === 2, { timeout: 5000, what: "the reconnect" });
  } finally {
    socket?.close(1000);
    await link.close();
  }
});

test("the first ping leaves as the socket opens: the object knows at once that it pings (one that dies before the first interval is not taken for an older library, never for dead)", async () => {
  let pongs = 0;
  const socket = new ReconnectingSocket(clientObjectUrl(workerUrl(), uniqueSpace("heartbeat"), "alice", "client"), {
    open() {},
    message: (data) => void (data === PONG && pongs++),
    close() {},
  }, 60_000); // the next ping a minute later
  try {
    await until(() => pongs === 1, { timeout: 2000, what: "a PONG soon after the open" });
  } finally {
    socket.close(1000);
  }
});
