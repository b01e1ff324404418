// The wire protocol's numbers (see protocol.ts, which exports them too, and
// builds the objects Op, Msg and CloseCode of them for the worker and the
// tests): one constant each, which the client library uses. They live in a
// module that imports nothing because a bundler inlines a constant only from
// such a module (esbuild, measured): a browser bundle then carries numbers
// and no table of names, 258 bytes less of a bundle budgeted at 20 KB
// (gzipped, measured 2026-11-25).

// Requests, client library -> object.
export const OP_HELLO = 1;
/** A renewed token on an open socket (see MSG_RENEW). */
export const OP_AUTH = 2;
/** [BATCH, 0, [encoded request frame, ...]] */
export const OP_BATCH = 3;
export const OP_DICT_SET = 10;
export const OP_DICT_DELETE = 11;
export const OP_DICT_CLEAR = 12;
export const OP_DICT_UPDATE = 13;
export const OP_PUT = 20;
export const OP_GET = 21;
export const OP_ACK = 22;
export const OP_CANCEL = 23;
export const OP_RELEASE = 24;
export const OP_SIZE = 25;
export const OP_ISSUE_TOKEN = 30;

// Messages, object -> client library.
export const MSG_REPLY = 100;
export const MSG_ERROR = 101;
export const MSG_SNAPSHOT = 102;
export const MSG_CHANGE = 103;
export const MSG_CLIENT_ONLINE = 104;
export const MSG_CLIENT_OFFLINE = 105;
/** [BATCH, [encoded message frame, ...]] */
export const MSG_BATCH = 106;
/** The socket's client token expires soon: send a new one (AUTH), or the socket is closed when it does. */
export const MSG_RENEW = 107;

// WebSocket close codes the objects use (4000-4999 is for applications).
// A client library does not reconnect after the ones marked final.
export const CLOSE_UNAUTHORIZED = 4001; // final
export const CLOSE_FORBIDDEN = 4003; // final
export const CLOSE_PROTOCOL_VERSION = 4005; // final
export const CLOSE_HELLO_FAILED = 4000; // the HELLO failed on the object's side (an internal error): reconnect
export const CLOSE_HELLO_TIMEOUT = 4008; // the socket said no HELLO in time
export const CLOSE_FRAME_TOO_LARGE = 4009;
export const CLOSE_TOO_MANY_CONNECTIONS = 4029;
/** The object took the socket for dead: its library's pings stopped (see worker/shared-object.ts). */
export const CLOSE_SILENT = 4012;
/** The socket's client token expired and no new one came (AUTH): a library reconnects with a new token. */
export const CLOSE_TOKEN_EXPIRED = 4013;
/** Sent by a handle that closed for good: its session ends (what it was given and did not acknowledge goes back at once). */
export const CLOSE_SESSION_ENDED = 4100;
