// Receives whose CANCEL came too late: the GET had been served, and its item
// was on its way back to a library that had given up the wait (an abort, a
// timeout, a receive sent ahead and withdrawn). The library then hands the
// item back (RELEASE) or, after a timeout, keeps it (ACK). A GET it sends
// meanwhile must not pass that item: it would get the next one first, and the
// one handed back after it. So until the item is settled, that socket's GETs
// on its fifo are not served (one that waits waits; a poll finds nothing).
//
// The deliveries are remembered in memory per socket: a wake between a
// delivery and its CANCEL (rare: the CANCEL comes within a round trip)
// forgets it, and the GET is served as before this existed. What a CANCEL
// holds back is also kept with its socket (see HeldStore): the item's way
// back may be a stalled link, long enough for the object to hibernate, and a
// put after the wake must not reach the waiting GET first.

/** Deliveries remembered per socket (the oldest forgotten first): a CANCEL names one of the last few. */
const RECENT = 64;

/** What a socket holds back: each fifo with the items it waits for. */
export type Held = readonly (readonly [fifo: string, seqs: readonly number[]])[];

/** Where what sockets hold back is kept across hibernation: with the sockets (see shared-object.ts). */
export interface HeldStore {
  /** What every open socket holds back, as kept. */
  load(): Iterable<[socket: string, held: Held]>;
  /** Keeps `held` with socket `socket` (empty: nothing held back). */
  save(socket: string, held: Held): void;
}

interface SocketDeliveries {
  /** Request id -> [fifo, item number] of its latest deliveries. */
  recent: Map<number, [string, number]>;
  /** Fifo -> items delivered to cancelled GETs and not yet settled. */
  out: Map<string, Set<number>>;
}

export class LateCancels {
  #store: HeldStore;
  // Read from the sockets on first use after each wake.
  #socketList: Map<string, SocketDeliveries> | null = null;

  constructor(store: HeldStore) {
    this.#store = store;
  }

  get #sockets(): Map<string, SocketDeliveries> {
    if (this.#socketList === null) {
      this.#socketList = new Map();
      for (const [socket, held] of this.#store.load()) {
        this.#socketList.set(socket, { recent: new Map(), out: new Map(held.map(([fifo, seqs]) => [fifo, new Set(seqs)])) });
      }
    }
    return this.#socketList;
  }

  #of(socket: string): SocketDeliveries {
    let entry = this.#sockets.get(socket);
    if (!entry) this.#sockets.set(socket, (entry = { recent: new Map(), out: new Map() }));
    return entry;
  }

  #save(socket: string, out: Map<string, Set<number>>): void {
    this.#store.save(socket, [...out].map(([fifo, seqs]) => [fifo, [...seqs]]));
  }

  /** GET `request` of `socket` was answered with item `seq` of `fifo`. */
  delivered(socket: string, request: number, fifo: string, seq: number): void {
    const { recent } = this.#of(socket);
    recent.set(request, [fifo, seq]);
    if (recent.size > RECENT) recent.delete(recent.keys().next().value!);
  }

  /**
   * `socket` cancelled GET `request`, which was no longer waiting. If it had
   * been answered and `unsettled(seq)` says its item is still leased to that
   * socket, its fifo holds that socket's GETs back until the item is settled.
   */
  cancelled(socket: string, request: number, unsettled: (seq: number) => boolean): void {
    const entry = this.#sockets.get(socket);
    const delivery = entry?.recent.get(request);
    if (!entry || !delivery) return;
    entry.recent.delete(request);
    const [fifo, seq] = delivery;
    if (!unsettled(seq)) return;
    let seqs = entry.out.get(fifo);
    if (!seqs) entry.out.set(fifo, (seqs = new Set()));
    seqs.add(seq);
    this.#save(socket, entry.out);
  }

  /** Whether GETs of `socket` on `fifo` wait for an item of a cancelled GET to be settled. */
  holds(socket: string, fifo: string): boolean {
    return this.#sockets.get(socket)?.out.has(fifo) ?? false;
  }

  /** Items `seqs` of `socket` were acknowledged or handed back: the fifos whose GETs may go on now. */
  settled(socket: string, seqs: number[]): string[] {
    const out = this.#sockets.get(socket)?.out;
    if (!out?.size) return [];
    const freed: string[] = [];
    let changed = false;
    for (const [fifo, held] of out) {
      for (const seq of seqs) changed = held.delete(seq) || changed;
      if (held.size === 0) {
        out.delete(fifo);
        freed.push(fifo);
      }
    }
    if (changed) this.#save(socket, out);
    return freed;
  }

  /** `socket` closed. */
  forget(socket: string): void {
    this.#sockets.delete(socket);
  }
}
