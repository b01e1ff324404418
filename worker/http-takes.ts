// Takes from a FIFO for HTTP callers: a wait in the FIFO's line, and a lease
// that the caller acknowledges with a receipt (see http.ts for why).
//
// A waiting take is a waiter of the FIFO like a WebSocket receive (first come,
// first served across both), kept in memory only: an HTTP request in
// progress keeps the object awake, and a wait lost with the object took
// nothing. An item is answered in the event that delivers it (the lease
// becomes a hold, or the item leaves storage at once), so none stays leased
// to a take that no longer runs.
import { ErrorCode, Limits } from "../client/protocol.js";
import { ProtocolError } from "./errors.js";
import type { Fifo, Item } from "./fifo.js";

/** Socket ids of waiting HTTP takes start with this (a WebSocket's id is a UUID). */
const HTTP_RECEIVER = "http:";

type Respond = (value: Uint8Array, receipt?: string) => Response;

export class HttpTakes {
  /** Waiting takes by receiver id: each one answers the item delivered to it (false: it could not show it). */
  #waits = new Map<string, (item: Item) => boolean>();

  constructor(
    private readonly fifo: () => Fifo,
    /**
     * Called when an item became held, or a take began to wait (maybe behind
     * a hold): wakes the object when a hold someone waits behind ends.
     */
    private readonly armHoldAlarm: () => Promise<void>,
    /** Called when an item went back in line: waiters may take it. */
    private readonly released: (fifo: string) => void,
  ) {}

  /** Whether `socket` names a waiting HTTP take (a receiver a delivery may go to). */
  isWaiting(socket: string): boolean {
    return this.#waits.has(socket);
  }

  /**
   * An item was leased to waiter `socket` (see Fifo.Offer). A waiting take
   * answers now, false if it cannot show the item (it answers an error, and
   * the FIFO gives the item to the next waiter); any other receiver takes it.
   */
  offer(socket: string, item: Item): boolean {
    const answer = this.#waits.get(socket);
    if (!answer) return true;
    this.#waits.delete(socket);
    return answer(item);
  }

  /**
   * Takes the head of `fifo`, waiting up to `waitMs`, and answers with
   * `respond(value, receipt)`. With a lease, the item is then held for
   * `leaseMs` and leaves storage when acknowledged; with none, it leaves at
   * once. If `respond` throws (the value cannot be shown as asked), the item
   * goes back to its place first. Returns null if nothing came.
   */
  async take(fifo: string, waitMs: number, leaseMs: number, respond: Respond): Promise<Response | null> {
    const id = crypto.randomUUID();
    const receiver = { socket: `${HTTP_RECEIVER}${id}`, session: httpSession(fifo, id) };
    const item = this.fifo().take(fifo, receiver);
    if (item) {
      let answered: Promise<Response>;
      try {
        answered = this.#answer(fifo, id, item, leaseMs, respond);
      } catch (error) {
        this.fifo().release(receiver.session, [item.seq]);
        this.released(fifo);
        throw error;
      }
      return answered;
    }
    if (waitMs <= 0) return null;
    if (this.#waits.size >= Limits.MAX_WAITS) {
      throw new ProtocolError(ErrorCode.TOO_MANY_WAITS, `at most ${Limits.MAX_WAITS} HTTP takes may wait at once here; try again`, undefined, 429);
    }
    const answered = new Promise<Response | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waits.delete(receiver.socket);
        this.fifo().cancel(receiver.socket, 0);
        resolve(null);
      }, waitMs);
      this.#waits.set(receiver.socket, (item) => {
        clearTimeout(timer);
        try {
          this.#answer(fifo, id, item, leaseMs, respond).then(resolve, reject);
          return true;
        } catch (error) {
          reject(error);
          return false;
        }
      });
    });
    this.fifo().wait(fifo, receiver, 0, true);
    await this.armHoldAlarm();
    return answered;
  }

  /**
   * Answers take `id` with `item`, leased to it; its synchronous part runs in
   * the delivering event. Throws what `respond` throws (the item is still
   * leased to the take: the caller puts it back).
   */
  #answer(fifo: string, id: string, item: Item, leaseMs: number, respond: Respond): Promise<Response> {
    const session = httpSession(fifo, id);
    const response = respond(item.value, leaseMs === 0 ? undefined : `${id}.${item.seq}`);
    if (leaseMs === 0) {
      this.fifo().ack(session, [item.seq]);
      return Promise.resolve(response);
    }
    this.fifo().hold(session, item.seq, Date.now() + leaseMs);
    return this.armHoldAlarm().then(() => response);
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
}

// The session names the fifo, so a receipt acknowledges nothing on another path.
function httpSession(fifo: string, id: string): string {
  return `http:${fifo}:${id}`;
}

function parseReceipt(fifo: string, receipt: string): { session: string; seq: number } | null {
  const match = /^([0-9a-f-]{36})\.(\d{1,15})$/.exec(receipt);
  return match ? { session: httpSession(fifo, match[1]), seq: Number(match[2]) } : null;
}
