import type { ErrorCode } from "../client/protocol.js";

/** A failure reported to the sender as an ERROR reply; state is left unchanged. */
export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Close the socket with this code after the reply (auth and version failures). */
    readonly closeCode?: number,
    /** The HTTP status, where the code's usual one does not fit. */
    readonly status?: number,
  ) {
    super(message);
  }
}
