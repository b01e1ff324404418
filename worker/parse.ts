// Checks of what a socket sends: every argument of every request is checked
// here before an object acts on it, so bad input becomes a typed ERROR reply.
import { ErrorCode, Limits, Op, type Hello, type LimitsInForce } from "../client/protocol.js";
import { isWellFormedValue } from "../client/codec.js";
import { MAX_BIGINT_BYTES } from "./bignums.js";
import type { DictWrite } from "./dict.js";
import { ProtocolError } from "./errors.js";

const MAX_SESSION_LENGTH = 64;

export function isRequestId(id: unknown): id is number {
  return typeof id === "number" && Number.isSafeInteger(id) && id >= 0;
}

export function checkValue(value: Uint8Array, limits: LimitsInForce): void {
  if (value.byteLength > limits.MAX_VALUE_BYTES) {
    throw new ProtocolError(ErrorCode.VALUE_TOO_LARGE, `a value is limited to ${limits.MAX_VALUE_BYTES} encoded bytes (got ${value.byteLength})`);
  }
  if (!isWellFormedValue(value)) throw new ProtocolError(ErrorCode.BAD_VALUE, `not a well-formed encoded value (a BigInt in one is at most ${MAX_BIGINT_BYTES} bytes)`);
}

export function parseSeqs(seqs: unknown): number[] {
  if (!Array.isArray(seqs) || seqs.length > Limits.MAX_ACK_BATCH || !seqs.every(isRequestId)) {
    throw new ProtocolError(ErrorCode.BAD_ARGUMENT, `ACK and RELEASE take up to ${Limits.MAX_ACK_BATCH} item numbers`);
  }
  return seqs as number[];
}

export function parseHello(hello: unknown): Hello {
  if (typeof hello !== "object" || hello === null) throw new ProtocolError(ErrorCode.BAD_ARGUMENT, "HELLO takes an object");
  const { v, token, session, since, pending } = hello as Record<string, unknown>;
  if (typeof v !== "number") throw new ProtocolError(ErrorCode.BAD_ARGUMENT, "HELLO needs the protocol version `v`");
  if (typeof session !== "string" || session.length === 0 || session.length > MAX_SESSION_LENGTH) {
    throw new ProtocolError(ErrorCode.BAD_ARGUMENT, `HELLO needs a session id of 1 to ${MAX_SESSION_LENGTH} characters`);
  }
  if (token !== undefined && typeof token !== "string") throw new ProtocolError(ErrorCode.BAD_ARGUMENT, "a token is a string");
  if (since !== undefined && !isRequestId(since)) throw new ProtocolError(ErrorCode.BAD_ARGUMENT, "`since` is a dict version");
  if (pending !== undefined && !isRequestId(pending)) throw new ProtocolError(ErrorCode.BAD_ARGUMENT, "`pending` is a request id");
  return { v, token, session, since, pending };
}

export function parseDictWrite(op: number, frame: unknown[]): DictWrite {
  const bad = (what: string) => new ProtocolError(ErrorCode.BAD_ARGUMENT, what);
  switch (op) {
    case Op.DICT_SET: {
      const [, , key, value] = frame;
      if (typeof key !== "string" || !(value instanceof Uint8Array)) throw bad("DICT_SET takes a string key and an encoded value");
      return { kind: "set", entries: [[key, value]] };
    }
    case Op.DICT_DELETE: {
      if (typeof frame[2] !== "string") throw bad("DICT_DELETE takes a string key");
      return { kind: "delete", key: frame[2] };
    }
    case Op.DICT_CLEAR:
      return { kind: "clear" };
    default: {
      const entries = frame[2];
      const ok = Array.isArray(entries) && entries.every(
        (e) => Array.isArray(e) && e.length === 2 && typeof e[0] === "string" && e[1] instanceof Uint8Array,
      );
      if (!ok) throw bad("DICT_UPDATE takes a list of [key, encoded value] pairs");
      return { kind: "set", entries: entries as [string, Uint8Array][] };
    }
  }
}
