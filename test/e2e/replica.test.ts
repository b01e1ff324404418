// The dict replica on its own (client/replica.ts): what it keeps of the
// messages that feed it, and the order it lists keys in while writes of its
// own are pending. (Through real handles and a worker: convergence.test.ts.)
import { expect, test } from "vitest";
import { Replica } from "../../client/replica.js";

const bytes = (...b: number[]) => new Uint8Array(b);

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
  expect([...replica.ordered.keys()]).toEqual(["a", "theirs", "mine"]);
  replica.confirm(1, 3);
  expect([...replica.ordered.keys()]).toEqual(["a", "theirs", "mine"]);
  expect([...replica.ordered.values()].map((v) => [...v])).toEqual([[1], [3], [2]]);
});

test("a pending delete hides a confirmed key, and a pending set shows its value in the key's place; all confirmed, the object's order", () => {
  const replica = loaded();
  replica.remote(1, [["a", bytes(1)], ["b", bytes(2)], ["c", bytes(3)]], false);
  replica.write(1, { kind: "delete", key: "a" });
  replica.write(2, { kind: "set", entries: [["b", bytes(20)]] });
  expect([...replica.ordered].map(([k, v]) => [k, [...v]])).toEqual([["b", [20]], ["c", [3]]]);
  // Deleted and set again: in its old place while pending; last once the object placed it.
  replica.write(3, { kind: "set", entries: [["a", bytes(10)]] });
  expect([...replica.ordered.keys()]).toEqual(["a", "b", "c"]);
  for (const [seq, version] of [[1, 2], [2, 3]]) replica.confirm(seq, version);
  expect([...replica.ordered.keys()]).toEqual(["b", "c", "a"]); // (the delete confirmed: "a" is new to the object)
  replica.confirm(3, 4);
  expect([...replica.ordered.keys()]).toEqual(["b", "c", "a"]);
});
