import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { expect, test } from "vitest";
import { encodeValue, decodeValue } from "../../client/codec.js";
import type { SpaceObject } from "../../worker/space.js";

test("the space object's dict applies and versions writes", async () => {
  const stub = env.SPACES.getByName("smoke");
  await runInDurableObject(stub, async (instance: SpaceObject) => {
    const applied = instance.dict.apply({ kind: "set", entries: [["k", encodeValue([1, 2])]] });
    expect(applied.version).toBe(1);
    const chunks = [...instance.dict.snapshot()];
    expect(chunks.length).toBe(1);
    expect(decodeValue(chunks[0][0][1]!)).toEqual([1, 2]);
  });
});
