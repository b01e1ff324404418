// The limits in force: the protocol's, lowered where the deployment set a
// worker variable LIMIT_<NAME> (a positive integer; values above the
// protocol's limit are ignored, since storage and frames are sized for it).
import { DEFAULT_LIMITS, TUNABLE_LIMITS, type LimitsInForce } from "../client/protocol.js";

const cache = new WeakMap<object, LimitsInForce>();

export function limitsFor(env: object): LimitsInForce {
  let limits = cache.get(env);
  if (!limits) {
    limits = { ...DEFAULT_LIMITS };
    for (const name of TUNABLE_LIMITS) {
      const raw = (env as Record<string, unknown>)[`LIMIT_${name}`];
      const value = typeof raw === "number" ? raw : Number(raw);
      if (raw !== undefined && Number.isInteger(value) && value > 0) limits[name] = Math.min(value, DEFAULT_LIMITS[name]);
    }
    cache.set(env, limits);
  }
  return limits;
}
