// Who may take which role. The server role needs the server token; clients
// run in open mode (they pick their id) only where CLIENT_AUTH=open was set on
// purpose, else in token mode: a client token is a JWT (HS256, through jose)
// that the worker signs for one client id in one space, with an expiry, when
// a server asks (server.issueClientToken). Tokens never reach a log.
import { SignJWT, errors, jwtVerify } from "jose";
import { CloseCode, ErrorCode } from "../client/protocol.js";
import { ProtocolError } from "./errors.js";

export interface AuthEnv {
  SERVER_TOKEN?: string;
  CLIENT_AUTH?: string;
}

/** Default and longest lifetime of a client token, in seconds. */
export const CLIENT_TOKEN_TTL = { default: 3600, max: 30 * 24 * 3600 } as const;
const AUDIENCE = "sharevars-client";

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

/** The client-token signing key: derived from SERVER_TOKEN, so rotating it revokes every client token. */
async function signingKey(env: AuthEnv): Promise<Uint8Array> {
  const base = await crypto.subtle.importKey("raw", encoder.encode(env.SERVER_TOKEN!), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", base, encoder.encode("sharevars client tokens v1")));
}

/** Why `ttl` (seconds) cannot be a client token's life, or null. */
export function ttlProblem(ttl: unknown): string | null {
  return typeof ttl === "number" && Number.isInteger(ttl) && ttl >= 1 && ttl <= CLIENT_TOKEN_TTL.max ? null : `a token lives 1 to ${CLIENT_TOKEN_TTL.max} seconds`;
}

/** A client token for `id` in `space` that expires `ttlSeconds` after `now` (whole seconds: JWT times). */
export async function issueClientToken(env: AuthEnv, space: string, id: string, ttlSeconds: number, now = Date.now()): Promise<string> {
  return new SignJWT({ space })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(id)
    .setAudience(AUDIENCE)
    .setIssuedAt(Math.floor(now / 1000))
    .setExpirationTime(Math.floor(now / 1000) + ttlSeconds)
    .sign(await signingKey(env));
}

/**
 * How long a socket may live on its client token: until `expires` (ms since
 * the epoch); from `renewAt` on, its library is asked for a new one (a minute
 * ahead, or a quarter of the token's life for one shorter than 4 minutes).
 */
export interface TokenLife {
  expires: number;
  renewAt: number;
}

const RENEW_AHEAD_MS = 60_000;

/** Throws unless a client may connect as `id` in `space`; returns its token's life (none in open mode). */
export async function authorizeClient(env: AuthEnv, space: string, id: string, token: unknown): Promise<TokenLife | undefined> {
  if (env.CLIENT_AUTH === "open") return undefined;
  const refuse = (code: ErrorCode, message: string): never => {
    throw new ProtocolError(code, message, code === ErrorCode.FORBIDDEN ? CloseCode.FORBIDDEN : CloseCode.UNAUTHORIZED);
  };
  if (!env.SERVER_TOKEN) refuse(ErrorCode.UNAUTHORIZED, "clients run in token mode and this worker has no SERVER_TOKEN to check tokens with");
  if (typeof token !== "string" || token.length === 0) {
    refuse(ErrorCode.UNAUTHORIZED, "this worker runs clients in token mode: connect with a token from server.issueClientToken(id)");
  }
  let claims: { sub?: string; space?: unknown; exp?: number; iat?: number };
  try {
    ({ payload: claims } = await jwtVerify(token as string, await signingKey(env), { audience: AUDIENCE, algorithms: ["HS256"], requiredClaims: ["exp"] }));
  } catch (error) {
    if (error instanceof errors.JWTExpired) refuse(ErrorCode.UNAUTHORIZED, "the client token has expired");
    refuse(ErrorCode.UNAUTHORIZED, "the client token is not valid (malformed, or not signed by this worker)");
  }
  if (claims!.space !== space) refuse(ErrorCode.FORBIDDEN, "the client token is for another space");
  if (claims!.sub !== id) refuse(ErrorCode.FORBIDDEN, "the client token is for another client id");
  const expires = claims!.exp! * 1000;
  const life = expires - (claims!.iat ?? 0) * 1000;
  return { expires, renewAt: expires - Math.min(RENEW_AHEAD_MS, life / 4) };
}
