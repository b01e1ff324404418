// The frames an object sends while it serves one BATCH: kept per socket and
// sent at the batch's end as one BATCH message per socket (the output gate
// holds them until the batch's writes are stored anyway). Order per socket is
// kept; outside a batch a frame goes at once.
import { Limits, Msg, encodeFrame } from "../client/protocol.js";

export class Outbox {
  #pending: Map<WebSocket, Uint8Array[]> | null = null;

  /** Starts keeping frames; false if a batch is already being served (its end sends them). */
  open(): boolean {
    if (this.#pending) return false;
    this.#pending = new Map();
    return true;
  }

  send(socket: WebSocket, frame: Uint8Array): void {
    if (!this.#pending) return socket.send(frame);
    const frames = this.#pending.get(socket);
    if (frames) frames.push(frame);
    else this.#pending.set(socket, [frame]);
  }

  /** Sends what is kept for `socket` now (before the object closes it). */
  flush(socket: WebSocket): void {
    const frames = this.#pending?.get(socket);
    if (!frames) return;
    this.#pending!.delete(socket);
    sendFrames(socket, frames);
  }

  /** Sends everything kept and stops keeping. */
  close(): void {
    const pending = this.#pending;
    this.#pending = null;
    if (!pending) return;
    for (const [socket, frames] of pending) {
      try {
        sendFrames(socket, frames);
      } catch (error) {
        // One socket failing (closing under us) must not keep the others' replies back;
        // what it was sent is handled as for any socket that closes.
        console.error("sharevars: a send failed", error);
      }
    }
  }
}

/** Sends `frames` to `socket` as BATCH messages of bounded size (a lone frame as itself). */
function sendFrames(socket: WebSocket, frames: Uint8Array[]): void {
  if (socket.readyState !== WebSocket.READY_STATE_OPEN) return;
  let start = 0;
  let bytes = 0;
  for (let i = 0; i <= frames.length; i++) {
    const size = i < frames.length ? frames[i].byteLength : 0;
    if (i === frames.length || (i > start && (i - start >= Limits.MAX_BATCH_FRAMES || bytes + size > Limits.BATCH_BYTES))) {
      socket.send(i - start === 1 ? frames[start] : encodeFrame([Msg.BATCH, frames.slice(start, i)]));
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
}
