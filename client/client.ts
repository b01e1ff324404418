// The client handle: `client["k"]` is this client's local dict (shared with
// the server only), `client.globals["k"]` the space's global dict. It holds
// one connection to its own client object and one to the space object.
import type { Connection, Status } from "./connection.js";
import { SharedDict, type ChangeEvent } from "./dict.js";
import { closeAfterWrites, combinedStatus, dictConnection } from "./wiring.js";
import { Emitter } from "./emitter.js";
import { DictHandle, PipeEnd } from "./handle.js";
import { checkName, type Role } from "./protocol.js";
import { dictProxy, reservedNames } from "./proxy.js";
import { tokenSource, tokenSubject, type TokenOption, type TokenSource } from "./tokens.js";
import { clientObjectUrl, spaceUrl } from "./urls.js";

export interface ClientOptions {
  /** The space to join. */
  space: string;
  /** This client's id (open mode; in token mode it comes from the token). Reconnecting with the same id finds the same local dict. */
  id?: string;
  /**
   * A client token from `server.issueClientToken(id)` (token mode), or a
   * function that gets one: called at connect, and again when the worker
   * asks for a new token (a while before the one in use expires) or refused
   * it, so that the client outlives its tokens.
   */
  token?: TokenOption;
  /**
   * How long connect() may take before it rejects with a ClosedError, in ms
   * (default 15000); a token function's call is given up after as long.
   */
  connectTimeout?: number;
}

type HandleEvents = { change: [ChangeEvent]; status: [Status] };

/** The client id: given, or (token mode) the subject of the (first) token. The worker verifies the token. */
function clientIdOf(options: ClientOptions, token: string | undefined): string {
  if (token === undefined) return options?.id as string;
  let subject: unknown;
  try {
    subject = tokenSubject(token);
  } catch {
    throw new TypeError("token is not a client token (a JWT from server.issueClientToken)");
  }
  if (options.id !== undefined && options.id !== subject) throw new TypeError(`the token is for client ${JSON.stringify(subject)}, not ${JSON.stringify(options.id)}`);
  return subject as string;
}

/** `client.globals`: the space's global dict and its global queues (each item goes to one getter). */
export class Globals extends DictHandle {}

export class Client extends PipeEnd<HandleEvents> {
  #id: string;
  #space: string;
  #global: SharedDict;
  #globals: Globals;
  #own: Connection;
  #spaceConnection: Connection;

  /**
   * Joins `space` as client `id`; resolves once this client's local dict and
   * the global dict are loaded, so that reads are synchronous from then on.
   */
  static async connect(url: string, options: ClientOptions): Promise<Client> {
    // A token function is asked for the first token here (its failure, or its timeout, is this call's).
    const source = tokenSource(options);
    const client = new Client(url, options, (await source())[0], source);
    try {
      await Promise.all([client.#own.ready, client.#spaceConnection.ready]);
    } catch (error) {
      await client.close({ flushTimeout: 0 });
      throw error;
    }
    return dictProxy(client, () => client.dict);
  }

  /** @internal Use Client.connect(). */
  constructor(url: string, options: ClientOptions, first: string | undefined, token: TokenSource) {
    const id = clientIdOf(options, first);
    for (const [value, what] of [[options?.space, "space"], [id, "id"]] as const) {
      const problem = checkName(value, what);
      if (problem) throw new TypeError(problem);
    }
    const local = new SharedDict(`the local dict of ${JSON.stringify(id)}`);
    const events = new Emitter<HandleEvents>();
    super(local, () => this.#own, events);
    this.#id = id;
    this.#space = options.space;
    this.#global = new SharedDict("the global dict");
    this.#globals = dictProxy(new Globals(this.#global, () => this.#spaceConnection), () => this.#global);
    // Two connections make one status: reported when it changes, not when either does.
    // One closed for good (refused on reconnect) closes the handle whole.
    let reported: Status | undefined;
    const onStatus = () => {
      if (this.status === "closed") void this.close({ flushTimeout: 0 }); // (closes at once: it never waits, never rejects)
      if (this.status !== reported) events.emit("status", (reported = this.status));
    };
    const common = { onStatus, connectTimeout: options.connectTimeout };
    const role: Role = "client";
    // The space socket first: the space object usually exists already and
    // answers at once, while a client's first connect creates its own object
    // (the slower open). Measured: 12.8 ms to ready this way, 15-16 ms the other.
    this.#spaceConnection = dictConnection(this.#global, spaceUrl(url, options.space, { role, id }), token, common);
    this.#own = dictConnection(local, clientObjectUrl(url, options.space, id, role), token, common);
  }

  get id(): string {
    return this.#id;
  }

  get space(): string {
    return this.#space;
  }

  /** "connecting", "open" or "closed". */
  get status(): Status {
    return combinedStatus([this.#own, this.#spaceConnection]);
  }

  /** The space's global dict, shared with every client and the server. */
  get globals(): Globals {
    return this.#globals;
  }

  /** Resolves when every write so far (local and global dicts) is durable on the edge. */
  async sync(): Promise<void> {
    await Promise.all([super.sync(), this.#global.sync()]);
  }

  /**
   * Waits up to `flushTimeout` ms (default 5000) for pending writes (dict
   * writes, and items sent or put) to be durable, then closes.
   */
  async close({ flushTimeout = 5000 }: { flushTimeout?: number } = {}): Promise<void> {
    await closeAfterWrites([this.#own, this.#spaceConnection], flushTimeout);
  }

}

/** Names on `client.globals` that are not global dict keys (besides those of Object.prototype, which are not listed). */
export const GLOBALS_RESERVED = /* @__PURE__ */ reservedNames(Globals);

/** Names on `client` that are not local dict keys (besides those of Object.prototype, which are not listed). */
export const CLIENT_RESERVED = /* @__PURE__ */ reservedNames(Client);
