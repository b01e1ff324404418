// Where each object lives, as WebSocket URLs under the worker's base URL.
export function objectUrl(base: string, space: string, path: string, params: Record<string, string>): string {
  const url = new URL(base);
  if (!/^(http|ws)s?:$/.test(url.protocol)) throw new TypeError(`the worker URL must be http(s) or ws(s), not ${url.protocol}`);
  url.protocol = url.protocol.replace("http", "ws");
  const prefix = url.pathname.replace(/\/+$/, "");
  url.pathname = `${prefix}/v1/spaces/${encodeURIComponent(space)}${path}/ws`;
  url.search = new URLSearchParams(params).toString();
  return url.toString();
}

export function spaceUrl(base: string, space: string, params: Record<string, string>): string {
  return objectUrl(base, space, "", params);
}

export function clientObjectUrl(base: string, space: string, id: string, role: "client" | "server"): string {
  return objectUrl(base, space, `/clients/${encodeURIComponent(id)}`, { role });
}
