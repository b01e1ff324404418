// The client library runs unchanged in a real browser: a page imports the
// built library, connects as a client, and shares a dict key, a pipe message
// and a global-queue item with a Node server handle; in token mode, its
// token function keeps it connected past its tokens' lives.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Browser } from "playwright-core";
import { handles } from "../helpers/handles.js";
import { hasChromium, launchChromium, serveStatic } from "../helpers/browser.js";
import { SERVER_TOKEN, uniqueSpace, until, workerUrl } from "../helpers/e2e.js";
import { startWorker, type LocalWorker } from "../helpers/worker.js";

const ROOT = resolve(import.meta.dirname, "../..");
const open = handles();
// CI installs Debian's chromium (.ci/run); only a local run without it skips.
const run = hasChromium || process.env.CI ? describe : describe.skip;

let browser: Browser;
let site: { url: string; close(): Promise<void> };
/** The page's files (index.html, sharevars.js). */
let dir: string;
beforeAll(async () => {
  if (!hasChromium && !process.env.CI) return;
  // The page loads the built package (dist/, through package.json exports) bundled for the browser.
  dir = mkdtempSync(join(tmpdir(), "sharevars-page-"));
  await build({ stdin: { contents: 'export * from "sharevars";', resolveDir: ROOT }, bundle: true, format: "esm", platform: "browser", outfile: join(dir, "sharevars.js"), logLevel: "silent" });
  writeFileSync(join(dir, "index.html"), `<!doctype html><meta charset="utf-8"><title>sharevars in a browser</title>
<script type="module">
  import * as sharevars from "./sharevars.js";
  window.sharevars = sharevars;
  window.loaded = true;
</script>`);
  site = await serveStatic(dir);
  browser = await launchChromium();
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await site?.close();
});

run("in a browser (Debian chromium, headless)", () => {
  test("a page shares a dict key, a pipe message and a global-queue item with a Node server", async () => {
    const space = uniqueSpace("browser");
    const server = await open.server(space);
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(String(error)));
    await page.goto(site.url + "/");
    await page.waitForFunction(() => (window as any).loaded === true);

    // the page connects as a client and writes its dict
    await page.evaluate(async ({ url, space }) => {
      const { Client } = (window as any).sharevars;
      const client = await Client.connect(url, { space, id: "browser" });
      (window as any).client = client;
      client["from the browser"] = { ok: true, when: new Date(0), bytes: new Uint8Array([1, 2, 3]) };
      client.globals["seen by all"] = "hello from chromium";
      await client.sync();
    }, { url: workerUrl(), space });

    await until(() => server.clients.length === 1, { what: "the browser client" });
    const peer = server.clients[0];
    expect(peer.id).toBe("browser");
    await peer.ready;
    expect(peer["from the browser"]).toEqual({ ok: true, when: new Date(0), bytes: new Uint8Array([1, 2, 3]) });
    expect(server["seen by all"]).toBe("hello from chromium");

    // a pipe message both ways
    peer["from node"] = 256;
    await peer.send("What's your name?");
    const answer = await page.evaluate(async () => {
      const client = (window as any).client;
      const question = await client.recv({ timeout: 10_000 });
      await client.send(`${question} — I am a browser.`);
      return { question, dictValue: client["from node"] };
    });
    expect(answer).toEqual({ question: "What's your name?", dictValue: 256 });
    expect(await peer.recv({ timeout: 10_000 })).toBe("What's your name? — I am a browser.");

    // a global-queue item
    await page.evaluate(() => (window as any).client.globals.queues["jobs"].put({ from: "browser", n: 1n }));
    expect(await server.queues["jobs"].get({ timeout: 10_000 })).toEqual({ from: "browser", n: 1n });

    await page.evaluate(() => (window as any).client.close());
    expect(errors).toEqual([]);
    await page.close();
  });

  test("the inspector page shows clients, dicts and queue lengths live, behind the server token", async () => {
    const space = uniqueSpace("inspect");
    const alice = await open.client(space, "alice");
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(String(error)));
    const asked: string[] = [];
    page.on("dialog", (dialog) => {
      asked.push(dialog.message());
      void dialog.accept(SERVER_TOKEN);
    });
    await page.goto(`${workerUrl()}/v1/spaces/${space}/inspect`);
    await page.locator('tr[data-client="alice"]').waitFor();
    expect(asked).toEqual([`Server token for space ${space}`]);
    expect(await page.locator('tr[data-client="alice"]').innerText()).toContain("online");

    // what a client writes appears without reloading
    alice["var1"] = "written by alice";
    alice.globals["test_var"] = [0, "well"];
    await alice.queues["other_queue"].put("Call me in 5 minutes.");
    await alice.globals.queues["news"].put(1);
    await alice.globals.queues["news"].put(2);
    const section = page.locator('section[data-client="alice"]');
    await section.getByText('"written by alice"').waitFor();
    await page.locator("#globals").getByText('[0,"well"]').waitFor();
    const waiting = (row: ReturnType<typeof page.locator>) => row.locator("td").nth(1).innerText({ timeout: 1000 }).catch(() => "");
    await until(async () => (await waiting(page.locator('#globals tr[data-fifo="queue:news"]'))) === "2", { what: "the news queue length" });
    await until(async () => (await waiting(section.locator('tr[data-fifo="queue:other_queue"]'))) === "1", { what: "alice's queue length" });

    await alice.close();
    await until(async () => (await page.locator('tr[data-client="alice"]').innerText()).includes("offline"), { what: "alice offline" });
    expect(errors).toEqual([]);
    await page.close();
  });

  describe("token mode", () => {
    // A worker of its own in token mode (the shared one runs clients open).
    let worker: LocalWorker;
    // The page's origin with its backend: the route a token function calls.
    // The worker sends no CORS headers (the server token must never reach a
    // browser), so a page cannot call the route itself; as the README has it, the page asks
    // its own origin, whose backend calls the worker's token route with the
    // server token.
    let app: { url: string; close(): Promise<void> };
    /** The tokens the backend handed out, with their expiry (ms since the epoch). */
    const issued: { id: string; expires: number }[] = [];
    beforeAll(async () => {
      worker = await startWorker({ vars: { CLIENT_AUTH: "token" } });
      app = await serveStatic(dir, {
        "/sharevars-token": async (_request, url) => {
          // (A real backend takes the id from its own login; the page names it here.)
          const [space, id] = [url.searchParams.get("space")!, url.searchParams.get("id")!];
          const response = await fetch(`${worker.url}/v1/spaces/${encodeURIComponent(space)}/clients/${encodeURIComponent(id)}/token?ttl=2`, {
            method: "POST",
            headers: { authorization: `Bearer ${SERVER_TOKEN}` },
          });
          if (!response.ok) throw new Error(`the token route answered ${response.status}: ${await response.text()}`);
          const { token, expires } = (await response.json()) as { token: string; expires: number };
          issued.push({ id, expires });
          return token;
        },
      });
    }, 120_000);
    afterAll(async () => {
      await app?.close();
      await worker?.stop();
    });

    test("a page's token function keeps its client past its 2 s tokens: renewed on the open connections, never a reconnect, and it still writes and sends", async () => {
      const space = uniqueSpace("browser-tokens");
      const server = await open.server(space, worker.url);
      const left: string[] = [];
      server.on("disconnect", (id) => left.push(id));
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(String(error)));
      await page.goto(app.url + "/");
      await page.waitForFunction(() => (window as any).loaded === true);

      // The worker's route is not for browsers: a page of another origin cannot call it.
      const direct = await page.evaluate(async ({ url, space, bearer }) => {
        try {
          const response = await fetch(`${url}/v1/spaces/${space}/clients/alice/token`, { method: "POST", headers: { authorization: bearer } });
          return `answered ${response.status}`;
        } catch (error) {
          return (error as Error).name;
        }
      }, { url: worker.url, space, bearer: `Bearer ${SERVER_TOKEN}` });
      expect(direct).toBe("TypeError"); // blocked by CORS
      expect(issued).toEqual([]);

      const connecting = Date.now();
      await page.evaluate(async ({ url, space }) => {
        const { Client } = (window as any).sharevars;
        const w = window as any;
        w.tokenCalls = 0;
        w.statuses = [];
        const client = await Client.connect(url, {
          space,
          token: () => (w.tokenCalls++, fetch(`/sharevars-token?space=${encodeURIComponent(space)}&id=browser`, { method: "POST" }).then((r: Response) => (r.ok ? r.text() : Promise.reject(new Error(`token route: ${r.status}`))))),
        });
        client.on("status", (status: string) => w.statuses.push(status));
        w.client = client;
      }, { url: worker.url, space });
      expect(await page.evaluate(() => (window as any).client.id)).toBe("browser");
      expect(issued).toHaveLength(1);

      // Past two tokens' lives: the first token (at most 2 s) and the next have expired by then.
      await new Promise((resolve) => setTimeout(resolve, 5000));
      expect(issued.length).toBeGreaterThanOrEqual(3);
      expect(Date.now()).toBeGreaterThan(issued[1].expires);

      // The connections stayed open all along, on renewed tokens: a write and a pipe message still reach the server.
      const after = await page.evaluate(async () => {
        const w = window as any;
        w.client["after"] = "renewals";
        await w.client.send("still here");
        await w.client.sync();
        return { status: w.client.status, statuses: w.statuses, calls: w.tokenCalls };
      });
      const elapsed = Date.now() - connecting;
      const peer = server.clients.get("browser");
      await peer.ready;
      expect(peer["after"]).toBe("renewals");
      expect(await peer.recv({ timeout: 5000 })).toBe("still here");
      expect(after.status).toBe("open");
      expect(after.statuses).toEqual([]); // never "connecting": no reconnect
      expect(left).toEqual([]); // the server never saw it leave
      // One call per token, shared by the client's two connections: the
      // first, then one per renewal, which for 2 s tokens (whole-second
      // expiries, asked half a second ahead) comes at most about once a second.
      expect(after.calls).toBeGreaterThanOrEqual(3);
      expect(after.calls).toBeLessThanOrEqual(1 + Math.ceil(elapsed / 1000));
      expect(issued.length).toBeGreaterThanOrEqual(after.calls - 1); // (the last may still be on its way)
      expect(issued.every(({ id }) => id === "browser")).toBe(true);

      await page.evaluate(() => (window as any).client.close());
      expect(errors).toEqual([]);
      await page.close();
    });
  });
});
