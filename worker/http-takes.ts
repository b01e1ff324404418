// Takes from a FIFO for HTTP callers: a wait in memory, and a lease that the
// caller acknowledges with a receipt (see http.ts for why).
//
// The waits live in memory on purpose: an HTTP request in progress keeps the
// object awake, and a wait lost with the object took nothing.
import { ErrorCode, Limits } from "../client/protocol.js";
import { ProtocolError } from "./errors.js";
import type { Fifo } from "./fifo.js";

export class HttpTakes {
  #waits = new Map<string, Set<() => void>>();
  /** HTTP takes waiting now (a bound: each holds a request open). */
  #waiting = 0;

  constructor(
    private readonly fifo: () => Fifo,
    /** Called when an item became held: waiters may need waking when the hold ends. */
    private readonly held: () => Promise<void>,
    /** Called when an item went back in line: waiters may take it. */
    private readonly released: (fifo: string) => void,
  ) {}

  /** An item arrived or came back on `fifo`: the HTTP takes waiting on it look again. */
  wake(fifo: string): void {
    const waits = this.#waits.get(fifo);
    if (waits) for (const wake of [...waits]) wake();
  }

  /**
   * Takes the head of `fifo`, waiting up to `waitMs`, and answers with
   * `respond(value, receipt)`. With a lease, the item is then held for
   * `leaseMs` and leaves storage when acknowledged; with none, it leaves at
   * once. If `respond` throws (the value cannot be shown as asked), the item
   * goes back to its place first. Returns null if nothing came.
   */
  async take(fifo: string, waitMs: number, leaseMs: number, respond: (value: Uint8Array, receipt?: string) => Response): Promise<Response | null> {
    if (waitMs > 0 && this.#waiting >= Limits.MAX_WAITS) {
      throw new ProtocolError(ErrorCode.TOO_MANY_WAITS, `at most ${Limits.MAX_WAITS} HTTP takes may wait at once here; try again`, undefined, 429);
    }
    this.#waiting += waitMs > 0 ? 1 : 0;
    try {
      return await this.#take(fifo, waitMs, leaseMs, respond);
    } finally {
      this.#waiting -= waitMs > 0 ? 1 : 0;
    }
  }

  async #take(fifo: string, waitMs: number, leaseMs: number, respond: (value: Uint8Array, receipt?: string) => Response): Promise<Response | null> {
    const id = crypto.randomUUID();
    const receiver = { socket: "http", session: httpSession(fifo, id) };
    const deadline = Date.now() + waitMs;
    for (;;) {
      const item = this.fifo().take(fifo, receiver);
      if (item) {
        let response: Response;
        try {
          response = respond(item.value, leaseMs === 0 ? undefined : `${id}.${item.seq}`);
        } catch (error) {
          this.fifo().release(receiver.session, [item.seq]);
          this.released(fifo);
          throw error;
        }
        if (leaseMs === 0) {
          this.fifo().ack(receiver.session, [item.seq]);
        } else {
          this.fifo().hold(receiver.session, item.seq, Date.now() + leaseMs);
          await this.held();
        }
        return response;
      }
      const left = deadline - Date.now();
      if (left <= 0) return null;
      // Looked at again each second too: an item held for someone else frees up without a put.
      await this.#sleep(fifo, Math.min(left, 1000));
    }
  }

  /** The item leased with `receipt` leaves storage; false if no such lease is in force. */
  ack(fifo: string, receipt: string): boolean {
    const lease = parseReceipt(fifo, receipt);
    return lease !== null && this.fifo().ack(lease.session, [lease.seq]) > 0;
  }

  /** The item leased with `receipt` goes back to its place in line; false if no such lease. */
  release(fifo: string, receipt: string): boolean {
    const lease = parseReceipt(fifo, receipt);
    return lease !== null && this.fifo().release(lease.session, [lease.seq]).length > 0;
  }

  #sleep(fifo: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let waits = this.#waits.get(fifo);
      if (!waits) this.#waits.set(fifo, (waits = new Set()));
      const done = () => {
        clearTimeout(timer);
        waits!.delete(done);
        if (waits!.size === 0) this.#waits.delete(fifo);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waits.add(done);
    });
  }
}

// The session names the fifo, so a receipt acknowledges nothing on another path.
function httpSession(fifo: string, id: string): string {
  return `http:${fifo}:${id}`;
}

function parseReceipt(fifo: string, receipt: string): { session: string; seq: number } | null {
  const match = /^([0-9a-f-]{36})\.(\d{1,15})$/.exec(receipt);
  return match ? { session: httpSession(fifo, match[1]), seq: Number(match[2]) } : null;
}
