// The live inspector: a page the worker serves at /v1/spaces/<space>/inspect
// that shows a space's clients, its global dict and queues, and each client's
// dict, queues and pipes with their lengths, refreshed every second.
//
// The page itself holds no data; it asks for the server token and reads
// /v1/spaces/<space>/summary with it in the Authorization header (never in a
// URL). Values are shown with textContent only, so a value cannot inject markup.
import type { ObjectSummary } from "./shared-object.js";
import { clientObjectName } from "./names.js";

/** Clients whose dicts one summary includes (the page pages through the rest). */
export const SUMMARY_CLIENTS = 50;

export interface ClientRow {
  id: string;
  online: boolean;
  order: number;
  firstSeen: number;
  lastSeen: number;
}

export interface SpaceSummary {
  space: string;
  at: number;
  globals: ObjectSummary;
  clients: ClientRow[];
  /** Summaries of clients[offset .. offset + SUMMARY_CLIENTS). */
  offset: number;
  details: Record<string, ObjectSummary>;
}

async function json<T>(response: Response): Promise<T> {
  if (!response.ok) throw new Error(`summary: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** The space object's summary and list of clients, and the summaries of one page of clients, fetched side by side. */
export async function spaceSummary(env: Env, space: string, offset: number): Promise<SpaceSummary> {
  const spaceStub = env.SPACES.getByName(space);
  const get = (stub: { fetch(r: Request): Promise<Response> }, path: string) => stub.fetch(new Request(`http://object/http/${path}`));
  const [globals, { clients }] = await Promise.all([
    json<ObjectSummary>(await get(spaceStub, "summary")),
    json<{ clients: ClientRow[] }>(await get(spaceStub, "clients")),
  ]);
  const page = clients.slice(offset, offset + SUMMARY_CLIENTS);
  const details: Record<string, ObjectSummary> = {};
  await Promise.all(page.map(async ({ id }) => {
    const stub = env.CLIENTS.getByName(clientObjectName(space, id));
    details[id] = await json<ObjectSummary>(await get(stub, "summary"));
  }));
  return { space, at: Date.now(), globals, clients, offset, details };
}

const SCRIPT = `
const space = JSON.parse(document.getElementById("space").textContent);
const $ = (tag, { dataset = {}, ...props } = {}, ...children) => {
  const el = Object.assign(document.createElement(tag), props);
  Object.assign(el.dataset, dataset);
  el.append(...children);
  return el;
};
const show = (v) => { const s = JSON.stringify(v); return s === undefined ? String(v) : s.length > 300 ? s.slice(0, 300) + "…" : s; };
let offset = 0, last = "";
function token() {
  let t = sessionStorage.getItem("sharevars-token");
  if (!t) { t = prompt("Server token for space " + space); if (t) sessionStorage.setItem("sharevars-token", t); }
  return t;
}
function dictTable(summary) {
  const rows = Object.entries(summary.dict).map(([k, v]) => $("tr", {}, $("td", { textContent: k, className: "key" }), $("td", { textContent: show(v) })));
  const table = $("table", { className: "dict" }, $("tr", {}, $("th", { textContent: "key" }), $("th", { textContent: "value" })), ...rows);
  const note = $("p", { className: "meta", textContent: summary.keys + " keys, version " + summary.version + (summary.truncated ? " (first keys shown)" : "") });
  return $("div", {}, note, table);
}
function channelTable(summary) {
  if (summary.channels.length === 0) return $("p", { className: "meta", textContent: "no queue or pipe holds items" });
  const label = (f) => f.startsWith("queue:") ? "queue " + f.slice(6) : f.startsWith("pipe:up:") ? "pipe " + f.slice(8) + " (to the server)" : "pipe " + f.slice(10) + " (to the client)";
  return $("table", { className: "channels" }, $("tr", {}, ...["queue or pipe", "waiting", "delivered", "receivers waiting"].map((t) => $("th", { textContent: t }))),
    ...summary.channels.map((c) => $("tr", { dataset: { fifo: c.fifo } }, $("td", { textContent: label(c.fifo) }), $("td", { textContent: c.waiting }), $("td", { textContent: c.delivered }), $("td", { textContent: c.receivers }))));
}
function render(s) {
  const main = document.getElementById("main");
  const clients = $("table", { className: "clients" }, $("tr", {}, ...["client", "online", "order", "last seen"].map((t) => $("th", { textContent: t }))),
    ...s.clients.map((c) => $("tr", { dataset: { client: c.id } }, $("td", { textContent: c.id }), $("td", { textContent: c.online ? "online" : "offline", className: c.online ? "on" : "off" }), $("td", { textContent: c.order }), $("td", { textContent: new Date(c.lastSeen).toLocaleString() }))));
  const sections = [$("h2", { textContent: "Clients (" + s.clients.length + ")" }), clients,
    $("section", { id: "globals" }, $("h2", { textContent: "Global dict" }), dictTable(s.globals), $("h3", { textContent: "Global queues" }), channelTable(s.globals))];
  for (const [id, d] of Object.entries(s.details)) {
    sections.push($("section", { dataset: { client: id } }, $("h2", { textContent: "Client " + id }), dictTable(d), $("h3", { textContent: "Queues and pipes" }), channelTable(d)));
  }
  if (s.clients.length > s.offset + Object.keys(s.details).length || s.offset > 0) {
    sections.push($("p", {}, $("button", { textContent: "previous clients", disabled: s.offset === 0, onclick: () => { offset = Math.max(0, offset - ${SUMMARY_CLIENTS}); refresh(); } }),
      $("button", { textContent: "next clients", onclick: () => { offset += ${SUMMARY_CLIENTS}; refresh(); } })));
  }
  main.replaceChildren(...sections);
}
async function refresh() {
  const t = token();
  const status = document.getElementById("status");
  if (!t) { status.textContent = "no server token"; return; }
  try {
    const r = await fetch(location.pathname.replace(/\\/inspect$/, "/summary") + "?offset=" + offset, { headers: { authorization: "Bearer " + t } });
    if (r.status === 401) { sessionStorage.removeItem("sharevars-token"); status.textContent = "wrong server token: reload to try again"; return; }
    if (!r.ok) throw new Error(r.status + " " + await r.text());
    const text = await r.text();
    const s = JSON.parse(text);
    status.textContent = "live · updated " + new Date(s.at).toLocaleTimeString();
    const shown = text.replace(/"at":\\d+/, "");
    if (shown !== last) { last = shown; render(s); }
  } catch (e) { status.textContent = "cannot reach the worker: " + e.message; }
}
refresh();
setInterval(refresh, 1000);
`;

let scriptHash: Promise<string> | undefined;

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/** The inspector page for `space`. */
export async function inspectorPage(space: string): Promise<Response> {
  scriptHash ??= sha256(SCRIPT);
  // The space name goes in as JSON inside a non-executable script element, escaped for HTML.
  const spaceJson = JSON.stringify(space).replace(/</g, "\\u003c");
  const title = space.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>sharevars · ${title}</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1em; } th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
td { font-family: ui-monospace, monospace; } .meta { color: #666; margin: .2em 0; } .on { color: #080; } .off { color: #888; }
section { border-top: 1px solid #ddd; margin-top: 1em; }
</style></head>
<body><h1>sharevars · <span id="name">${title}</span></h1><p id="status" class="meta">loading…</p><div id="main"></div>
<script type="application/json" id="space">${spaceJson}</script>
<script>${SCRIPT}</script></body></html>`;
  return new Response(html, {
    headers: {
      "content-type": "text/html; charset=utf-8",
      "content-security-policy": `default-src 'none'; script-src 'sha256-${await scriptHash}'; style-src 'unsafe-inline'; connect-src 'self'`,
      "cache-control": "no-store",
    },
  });
}
