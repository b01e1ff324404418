// One object per (space, client id): that client's local dict, shared by the
// client and the server only. Its name is JSON [space, id] (see names.ts).
import type { Role } from "../client/protocol.js";
import { authorizeClient, authorizeServer, type TokenLife } from "./auth.js";
import { parseClientObjectName } from "./names.js";
import { SharedObject } from "./shared-object.js";

export class ClientObject extends SharedObject {
  protected get maxConnections(): number {
    return this.limits.MAX_CONNECTIONS_PER_CLIENT;
  }
  protected readonly hasPipes = true;

  protected async authorize(role: Role, clientId: string | undefined, token: unknown): Promise<TokenLife | undefined> {
    if (role === "server") return void (await authorizeServer(this.env, token));
    const { space, id } = parseClientObjectName(this.name);
    // The worker entry routes a client only to its own object; checked again here.
    if (clientId !== id) throw new Error("a client socket reached another client's object");
    return authorizeClient(this.env, space, id, token);
  }
}
