// Secrets and variables that wrangler.toml deliberately does not declare.
interface Env {
  /** The server token (`wrangler secret put SERVER_TOKEN`). Without it the server role is refused. */
  SERVER_TOKEN?: string;
  /** "open": clients pick their id. Anything else (or unset): token mode. */
  CLIENT_AUTH?: string;
}
