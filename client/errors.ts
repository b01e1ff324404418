// Typed errors: each carries a `code` from the protocol's ErrorCode.
import { ErrorCode } from "./protocol.js";

export class SharevarsError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "SharevarsError";
    this.code = code;
  }
}

/** A limit was exceeded (VALUE_TOO_LARGE, KEY_TOO_LARGE, TOO_MANY_KEYS, FRAME_TOO_LARGE, QUEUE_FULL, TOO_MANY_CONNECTIONS, TOO_MANY_WAITS). Nothing was stored. */
export class LimitError extends SharevarsError {
  override name = "LimitError";
}

/** Credentials missing, wrong, expired, or not for this (UNAUTHORIZED, FORBIDDEN). */
export class AuthError extends SharevarsError {
  override name = "AuthError";
}

/** The other side did not understand a frame (BAD_FRAME, UNKNOWN_OP, BAD_ARGUMENT, ...). */
export class ProtocolError extends SharevarsError {
  override name = "ProtocolError";
}

/** A wait ran out (`{ timeout }`). The item it waited for, if any comes, stays for the next receiver. */
export class TimeoutError extends SharevarsError {
  override name = "TimeoutError";
  constructor(message = "timed out") {
    super(ErrorCode.TIMEOUT, message);
  }
}

/** The handle was closed, or could not connect. */
export class ClosedError extends SharevarsError {
  override name = "ClosedError";
  constructor(message = "the connection is closed") {
    super(ErrorCode.CLOSED, message);
  }
}

/** A synchronous read before the snapshot arrived (`await peer.ready` first). */
export class NotReadyError extends SharevarsError {
  override name = "NotReadyError";
  constructor(message: string) {
    super(ErrorCode.NOT_READY, message);
  }
}

/**
 * The limit codes, by name: KEY_TOO_LARGE, VALUE_TOO_LARGE, FRAME_TOO_LARGE,
 * TOO_MANY_KEYS, TOO_MANY_CONNECTIONS, TOO_MANY_WAITS and QUEUE_FULL (no other
 * code is named so: keep it that way; test/e2e/limits.test.ts checks it).
 */
const LIMIT_CODE = /TOO_|FULL/;

/** The typed error for an ERROR message from an object (which never sends TIMEOUT or CLOSED: those are the library's own). */
export function errorFromWire(code: ErrorCode, message: string): SharevarsError {
  if (LIMIT_CODE.test(code)) return new LimitError(code, message);
  if (code === ErrorCode.UNAUTHORIZED || code === ErrorCode.FORBIDDEN) return new AuthError(code, message);
  if (code === ErrorCode.NOT_READY) return new NotReadyError(message);
  if (code === ErrorCode.INTERNAL || code === ErrorCode.OUTCOME_UNKNOWN) return new SharevarsError(code, message);
  return new ProtocolError(code, message);
}
