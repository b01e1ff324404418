// A headless Debian Chromium (playwright-core, no downloaded browser) and a
// static server on 127.0.0.1 for the pages it opens.
import { createServer, type IncomingMessage, type Server as HttpServer } from "node:http";
import { existsSync, readFileSync } from "node:fs";
import { join, extname } from "node:path";
import { chromium, type Browser } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
export const hasChromium = existsSync(CHROMIUM);

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
  });
}

const TYPES: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".map": "application/json" };

/** A page's backend route: answers with this text (500 if it throws). */
export type Route = (request: IncomingMessage, url: URL) => Promise<string>;

/**
 * Serves the files of `dir` on 127.0.0.1, and `routes` (by path) as the
 * pages' own backend; resolves with its base URL and a close function.
 */
export async function serveStatic(dir: string, routes: Record<string, Route> = {}): Promise<{ url: string; close(): Promise<void> }> {
  const server: HttpServer = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://x");
    const route = routes[url.pathname];
    if (route) {
      route(request, url).then(
        (body) => response.writeHead(200, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" }).end(body),
        (error) => response.writeHead(500).end(String(error)),
      );
      return;
    }
    const path = join(dir, new URL(request.url ?? "/", "http://x").pathname.replace(/\/$/, "/index.html"));
    if (!path.startsWith(dir) || !existsSync(path)) {
      response.writeHead(404).end("not found");
      return;
    }
    response.writeHead(200, { "content-type": TYPES[extname(path)] ?? "application/octet-stream" }).end(readFileSync(path));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // (a page's kept-alive connections would hold the close)
      }),
  };
}
