// sharevars: shared dicts, pipes and queues between one server and many
// clients, through Cloudflare Durable Objects.
export { Client, Globals, CLIENT_RESERVED, GLOBALS_RESERVED, type ClientOptions } from "./client.js";
export type { TokenOption } from "./tokens.js";
export { Server, ClientPeer, ClientList, SERVER_RESERVED, PEER_RESERVED, type ServerOptions } from "./server.js";
export { SharedDict, type ChangeEvent } from "./dict.js";
export { Pipe, Queue, type Channels, type WaitOptions } from "./channel.js";
export type { Status } from "./connection.js";
export {
  SharevarsError, LimitError, AuthError, ProtocolError, TimeoutError, ClosedError, NotReadyError,
} from "./errors.js";
export { ErrorCode, Limits, PROTOCOL_VERSION } from "./protocol.js";
