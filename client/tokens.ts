// Client tokens on the library's side: a token given as a function is asked
// for again when the one in use is spent (the worker asked for a new one,
// closed the socket at its expiry, or refused it), never on a clock of the
// library's own: the worker's clock decides, so a client's skewed clock
// cannot make it renew too late. The connections of one handle share one
// source, so one renewal serves both.
import { after, checkDelay } from "./delays.js";
import { ClosedError } from "./errors.js";

/** A fixed token, or a function that gets a new one (from your backend, say). */
export type TokenOption = string | (() => string | Promise<string>);

/**
 * The token to use now, given the one found spent (if any): a function's
 * next token only if its current one is that (a fixed token is always
 * itself); and whether the function was called for it (a token got earlier
 * may have expired since: see Connection's MSG_ERROR).
 */
export type TokenSource = (spent?: string) => Promise<[token: string | undefined, called: boolean]>;

/**
 * The subject of a JWT, unverified: the library only needs it to address the
 * client's object; the worker verifies the token. (Hand-written rather than
 * jose's decodeJwt: jose adds 0.7 KB gzipped to a browser bundle budgeted at 20 KB.)
 */
export function tokenSubject(token: string): unknown {
  // base64url to base64; atob needs no padding (forgiving-base64 decode).
  const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes)).sub;
}

/**
 * A function is called for the first token and for each renewal (concurrent
 * callers share one call). What it returns is not checked here: the worker
 * refuses what is not a token. A call that has not answered within
 * `connectTimeout` fails with a ClosedError (Client.connect rejects with it),
 * and the next caller calls again: one that never settles would otherwise
 * keep connect() waiting past its timeout, and every later caller for good
 * (the handle reconnecting forever after its token expired).
 *
 * Every handle makes its source before anything else, so `connectTimeout`
 * is checked here (a TypeError): before a function is called for a token,
 * and before a socket opens.
 */
export function tokenSource({ token, connectTimeout: ms = 15_000 }: { token?: TokenOption; connectTimeout?: number } = {}): TokenSource {
  checkDelay(ms, "connectTimeout");
  if (typeof token !== "function") return async () => [token, false];
  let current: string | undefined;
  let pending: Promise<string> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  return async (spent) =>
    current !== undefined && current !== spent
      ? [current, false]
      : [
          await (pending ??= Promise.race([token(), new Promise<never>((_, reject) => (timer = after(ms, () => reject(new ClosedError(`no token within ${ms} ms`)))))])
            .then((value) => (current = value))
            .finally(() => (clearTimeout(timer), (pending = undefined)))),
          true,
        ];
}
