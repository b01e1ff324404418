// The dict replica on its own (client/replica.ts): what it keeps of the
// messages that feed it, and the order it lists keys in while writes of its
// own are pending. (Through real handles and a worker: convergence.test.ts.)
import { expect, test } from "vitest";
import { Replica } from "../../client/replica.js";

const bytes = (...b: number[]) => new Uint8Array(b);
const keysOf = (replica: Replica) => replica.ordered.map(([key]) => key);

function loaded(): Replica {
  const replica = new Replica(() => {});
  replica.snapshotDone(true, 0, 0);
  return replica;
}

test("a value a CHANGE brings is kept apart from its message, which holds other values too (it would keep the whole message alive)", () => {
  const replica = loaded();
  const message = new Uint8Array(256 * 1024);
  message.set([7, 8, 9], 10);
  replica.remote(1, [["small", message.subarray(10, 13)], ["big", message.subarray(13)]], false);
  const small = replica.view.get("small")!;
  expect([...small]).toEqual([7, 8, 9]);
  expect(small.buffer.byteLength).toBe(3);
});

test("while a new key of its own is pending, it is listed after the keys the object confirmed, even ones that came after it; then as the object placed it", () => {
  const replica = loaded();
  replica.remote(1, [["a", bytes(1)]], false);
  replica.write(1, { kind: "set", entries: [["mine", bytes(2)]] });
  replica.remote(2, [["theirs", bytes(3)]], false); // the object placed it before "mine"
  expect([...replica.view.keys()]).toEqual(["a", "mine", "theirs"]); // (the order things happened here)
  expect(keysOf(replica)).toEqual(["a", "theirs", "mine"]);
  replica.confirm(1, 3);
  expect(keysOf(replica)).toEqual(["a", "theirs", "mine"]);
  expect(replica.ordered.map(([, v]) => [...v])).toEqual([[1], [3], [2]]);
});

test("a pending delete hides a confirmed key, and a pending set shows its value in the key's place; all confirmed, the object's order", () => {
  const replica = loaded();
  replica.remote(1, [["a", bytes(1)], ["b", bytes(2)], ["c", bytes(3)]], false);
  replica.write(1, { kind: "delete", key: "a" });
  replica.write(2, { kind: "set", entries: [["b", bytes(20)]] });
  expect(replica.ordered.map(([k, v]) => [k, [...v]])).toEqual([["b", [20]], ["c", [3]]]);
  // Deleted and set again: last, as the object will put it, and it stays there as the object confirms.
  replica.write(3, { kind: "set", entries: [["a", bytes(10)]] });
  expect(keysOf(replica)).toEqual(["b", "c", "a"]);
  for (const [seq, version] of [[1, 2], [2, 3], [3, 4]]) {
    replica.confirm(seq, version);
    expect(keysOf(replica)).toEqual(["b", "c", "a"]);
  }
});

test("pending writes are listed as the object will apply them: after a clear, in the order set; a key deleted and set again, last; its value the last set", () => {
  const replica = loaded();
  replica.remote(1, [["a", bytes(1)], ["b", bytes(2)], ["c", bytes(3)], ["d", bytes(4)]], false);
  replica.write(1, { kind: "set", entries: [["b", bytes(20)], ["new", bytes(5)]] });
  replica.write(2, { kind: "delete", key: "b" });
  replica.write(3, { kind: "set", entries: [["c", bytes(30)], ["b", bytes(21)]] });
  replica.write(4, { kind: "set", entries: [["a", bytes(10)], ["new", bytes(50)]] });
  const listed = () => replica.ordered.map(([k, v]) => [k, [...v]]);
  expect(listed()).toEqual([["a", [10]], ["c", [30]], ["d", [4]], ["new", [50]], ["b", [21]]]);
  // The object's order once it confirmed them all: the order never changed meanwhile.
  for (const seq of [1, 2, 3, 4]) {
    replica.confirm(seq, seq + 1);
    expect(listed()).toEqual([["a", [10]], ["c", [30]], ["d", [4]], ["new", [50]], ["b", [21]]]);
  }

  replica.write(5, { kind: "clear" });
  replica.write(6, { kind: "set", entries: [["d", bytes(40)], ["b", bytes(22)], ["x", bytes(6)]] });
  replica.write(7, { kind: "delete", key: "x" });
  replica.write(8, { kind: "set", entries: [["a", bytes(11)]] });
  expect(listed()).toEqual([["d", [40]], ["b", [22]], ["a", [11]]]);
  expect([...replica.view.keys()].sort()).toEqual(["a", "b", "d"]);
  for (const seq of [5, 6, 7, 8]) {
    replica.confirm(seq, seq + 1);
    expect(listed()).toEqual([["d", [40]], ["b", [22]], ["a", [11]]]);
  }
});

test("listing a large dict in order while a write is pending costs about what listing its entries does (not a copy of the dict per call)", () => {
  const replica = loaded();
  const entries: [string, Uint8Array][] = Array.from({ length: 100_000 }, (_, i) => [`key${i}`, bytes(i & 255)]);
  replica.remote(1, entries, false);
  replica.write(1, { kind: "set", entries: [["key5", bytes(1)], ["new", bytes(2)]] });
  const time = (f: () => unknown) => {
    let best = Infinity;
    for (let i = 0; i < 7; i++) {
      const start = performance.now();
      f();
      best = Math.min(best, performance.now() - start);
    }
    return best;
  };
  const listing = time(() => [...replica.view]);
  const ordered = time(() => replica.ordered);
  expect(replica.ordered.at(-1)![0]).toBe("new");
  expect(ordered, `${ordered.toFixed(1)} ms in order, ${listing.toFixed(1)} ms listed`).toBeLessThan(4 * listing);
});
