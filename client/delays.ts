// Delays users give (`timeout`, `connectTimeout`, `flushTimeout`). setTimeout
// fires at once (after 1 ms) for a delay over 2^31 - 1 ms (about 24.8 days),
// Infinity included: such a delay is no limit at all here.

/** Throws a TypeError unless `ms` is a number of milliseconds >= 0. */
export function checkDelay(ms: unknown, what: string): void {
  if (!(typeof ms === "number" && ms >= 0)) throw new TypeError(`${what} is a number of milliseconds >= 0`);
}

/** Runs `fn` after `ms` (a checked delay); no timer at all for one over what setTimeout honours. */
export function after(ms: number, fn: () => void): ReturnType<typeof setTimeout> | undefined {
  return ms < 2 ** 31 ? setTimeout(fn, ms) : undefined;
}
