// The live inspector: a page the worker serves at /v1/spaces/<space>/inspect
// that shows a space's clients, its global dict and queues, and each client's
// dict, queues and pipes with their lengths, refreshed every second.
//
// The page itself holds no data; it asks for the server token and reads
// /v1/spaces/<space>/summary with it in the Authorization header (never in a
// URL). Values are shown with textContent only, so a value cannot inject markup.
import type { ClientsPage, ObjectSummary } from "./shared-object.js";
import { clientObjectName } from "./names.js";

/** Clients whose dicts one summary includes (the page pages through the rest). */
export const SUMMARY_CLIENTS = 50;

export interface SpaceSummary {
  space: string;
  at: number;
  globals: ObjectSummary;
  /** Clients the space has ever seen. */
  total: number;
  /** clients[offset .. offset + SUMMARY_CLIENTS), with their summaries (or why one failed). */
  offset: number;
  clients: (ClientsPage["clients"][number] & { summary: ObjectSummary | { error: string } })[];
}

async function json<T>(response: Response): Promise<T> {
  if (!response.ok) throw new Error(`the object answered ${response.status}`);
  return (await response.json()) as T;
}

const get = (stub: { fetch(r: Request): Promise<Response> }, path: string) => stub.fetch(new Request(`http://object/http/${path}`));

/** The space object's summary and one page of its clients with theirs, fetched side by side. */
export async function spaceSummary(env: Env, space: string, offset: number): Promise<SpaceSummary> {
  const spaceStub = env.SPACES.getByName(space);
  const [globals, page] = await Promise.all([
    json<ObjectSummary>(await get(spaceStub, "summary")),
    json<ClientsPage>(await get(spaceStub, `clients?offset=${offset}&limit=${SUMMARY_CLIENTS}`)),
  ]);
  // One client object that fails is shown as failed; the rest of the page still shows.
  const summaries = await Promise.allSettled(page.clients.map(async ({ id }) => json<ObjectSummary>(await get(env.CLIENTS.getByName(clientObjectName(space, id)), "summary"))));
  const clients = page.clients.map((client, i) => {
    const outcome = summaries[i];
    return { ...client, summary: outcome.status === "fulfilled" ? outcome.value : { error: String(outcome.reason) } };
  });
  return { space, at: Date.now(), globals, total: page.total, offset, clients };
}

const SCRIPT = `
const space = JSON.parse(document.getElementById("space").textContent);
const $ = (tag, { dataset = {}, ...props } = {}, ...children) => {
  const el = Object.assign(document.createElement(tag), props);
  Object.assign(el.dataset, dataset);
  el.append(...children);
  return el;
};
let offset = 0, last = "", timer = null;
function token() {
  let t = sessionStorage.getItem("sharevars-token");
  if (!t) { t = prompt("Server token for space " + space); if (t) sessionStorage.setItem("sharevars-token", t); }
  return t;
}
// Without a token the page stops asking every second: a button asks again.
function stop(message) {
  clearInterval(timer);
  timer = null;
  const status = document.getElementById("status");
  status.replaceChildren(message + " ", $("button", { textContent: "enter the server token", onclick: start }));
}
function start() {
  if (timer === null) timer = setInterval(refresh, 1000);
  refresh();
}
function dictTable(summary) {
  const rows = summary.dict.map(([k, v]) => $("tr", {}, $("td", { textContent: k, className: "key" }), $("td", { textContent: v })));
  const table = $("table", { className: "dict" }, $("tr", {}, $("th", { textContent: "key" }), $("th", { textContent: "value" })), ...rows);
  const note = $("p", { className: "meta", textContent: summary.keys + " keys, version " + summary.version + (summary.truncated ? " (first keys shown)" : "") });
  return $("div", {}, note, table);
}
function channelTable(summary) {
  if (summary.channels.length === 0) return $("p", { className: "meta", textContent: "no queue or pipe holds items" });
  const label = (f) => f.startsWith("queue:") ? "queue " + f.slice(6) : f.startsWith("pipe:up:") ? "pipe " + f.slice(8) + " (to the server)" : "pipe " + f.slice(10) + " (to the client)";
  const table = $("table", { className: "channels" }, $("tr", {}, ...["queue or pipe", "waiting", "delivered", "receivers waiting"].map((t) => $("th", { textContent: t }))),
    ...summary.channels.map((c) => $("tr", { dataset: { fifo: c.fifo } }, $("td", { textContent: label(c.fifo) }), $("td", { textContent: c.waiting }), $("td", { textContent: c.delivered }), $("td", { textContent: c.receivers }))));
  return summary.moreChannels ? $("div", {}, table, $("p", { className: "meta", textContent: "(more not shown)" })) : table;
}
function render(s) {
  const main = document.getElementById("main");
  const clients = $("table", { className: "clients" }, $("tr", {}, ...["client", "online", "order", "last seen"].map((t) => $("th", { textContent: t }))),
    ...s.clients.map((c) => $("tr", { dataset: { client: c.id } }, $("td", { textContent: c.id }), $("td", { textContent: c.online ? "online" : "offline", className: c.online ? "on" : "off" }), $("td", { textContent: c.order }), $("td", { textContent: new Date(c.lastSeen).toLocaleString() }))));
  const shown = s.clients.length ? (s.offset + 1) + " to " + (s.offset + s.clients.length) + " of " + s.total : "none yet";
  const sections = [$("h2", { textContent: "Clients (" + shown + ")" }), clients,
    $("section", { id: "globals" }, $("h2", { textContent: "Global dict" }), dictTable(s.globals), $("h3", { textContent: "Global queues" }), channelTable(s.globals))];
  for (const c of s.clients) {
    const body = c.summary.error ? [$("p", { className: "meta", textContent: "cannot be read: " + c.summary.error })] : [dictTable(c.summary), $("h3", { textContent: "Queues and pipes" }), channelTable(c.summary)];
    sections.push($("section", { dataset: { client: c.id } }, $("h2", { textContent: "Client " + c.id }), ...body));
  }
  if (s.total > ${SUMMARY_CLIENTS}) {
    sections.push($("p", {}, $("button", { textContent: "previous clients", disabled: s.offset === 0, onclick: () => { offset = Math.max(0, offset - ${SUMMARY_CLIENTS}); refresh(); } }),
      $("button", { textContent: "next clients", disabled: s.offset + ${SUMMARY_CLIENTS} >= s.total, onclick: () => { offset += ${SUMMARY_CLIENTS}; refresh(); } })));
  }
  main.replaceChildren(...sections);
}
async function refresh() {
  const t = token();
  if (!t) return stop("no server token.");
  const status = document.getElementById("status");
  try {
    const r = await fetch(location.pathname.replace(/\\/inspect$/, "/summary") + "?offset=" + offset, { headers: { authorization: "Bearer " + t } });
    if (r.status === 401) { sessionStorage.removeItem("sharevars-token"); return stop("wrong server token."); }
    if (!r.ok) throw new Error(r.status + " " + await r.text());
    const text = await r.text();
    const s = JSON.parse(text);
    status.textContent = "live · updated " + new Date(s.at).toLocaleTimeString();
    const shown = text.replace(/"at":\\d+/, "");
    if (shown !== last) { last = shown; render(s); }
  } catch (e) { status.textContent = "cannot reach the worker: " + e.message; }
}
start();
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
      "content-security-policy": `default-src 'none'; script-src 'sha256-${await scriptHash}'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "cache-control": "no-store",
    },
  });
}
