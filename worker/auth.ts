// Who may take which role. The server role needs the server token; clients
// run in open mode (they pick their id) only where CLIENT_AUTH=open was set on
// purpose, else in token mode. Tokens never reach a log.
import { CloseCode, ErrorCode } from "../client/protocol.js";
import { ProtocolError } from "./errors.js";

export interface AuthEnv {
  SERVER_TOKEN?: string;
  CLIENT_AUTH?: string;
}

const encoder = new TextEncoder();

async function digest(text: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", encoder.encode(text));
}

/** Constant-time comparison: both sides are hashed first so lengths never leak. */
export async function sameSecret(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([digest(given), digest(expected)]);
  return crypto.subtle.timingSafeEqual(a, b);
}

/** Throws unless `token` is this worker's server token. Fails closed without one. */
export async function authorizeServer(env: AuthEnv, token: unknown): Promise<void> {
  if (!env.SERVER_TOKEN) {
    throw new ProtocolError(ErrorCode.UNAUTHORIZED, "the server role is disabled: this worker has no SERVER_TOKEN secret", CloseCode.UNAUTHORIZED);
  }
  if (typeof token !== "string" || token.length === 0) {
    throw new ProtocolError(ErrorCode.UNAUTHORIZED, "the server role needs the server token", CloseCode.UNAUTHORIZED);
  }
  if (!(await sameSecret(token, env.SERVER_TOKEN))) {
    throw new ProtocolError(ErrorCode.UNAUTHORIZED, "wrong server token", CloseCode.UNAUTHORIZED);
  }
}

/** Throws unless a client may connect as `id` in `space`. */
export async function authorizeClient(env: AuthEnv, _space: string, _id: string, _token: unknown): Promise<void> {
  if (env.CLIENT_AUTH === "open") return;
  // Token mode: signed client tokens are checked here once they exist.
  throw new ProtocolError(ErrorCode.UNAUTHORIZED, "this worker runs clients in token mode (CLIENT_AUTH is not \"open\") and no client token was accepted", CloseCode.UNAUTHORIZED);
}
