// Durable Object names. A client object is named by JSON [space, id], so no
// choice of space name or client id can collide with another pair.
export function clientObjectName(space: string, id: string): string {
  return JSON.stringify([space, id]);
}

export function parseClientObjectName(name: string): { space: string; id: string } {
  const [space, id] = JSON.parse(name) as [string, string];
  return { space, id };
}
