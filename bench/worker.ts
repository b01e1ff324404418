// The benchmark's worker: the product worker unchanged, plus the bare
// baseline object under /bench/bare/<name>/ws.
import product from "../worker/index.js";

export { SpaceObject, ClientObject } from "../worker/index.js";
export { BareObject } from "./bare.js";

interface BenchEnv extends Env {
  BARE: DurableObjectNamespace;
}

export default {
  async fetch(request: Request, env: BenchEnv, ctx: ExecutionContext): Promise<Response> {
    const match = /^\/bench\/bare\/([^/]+)\/ws$/.exec(new URL(request.url).pathname);
    if (match) return env.BARE.get(env.BARE.idFromName(match[1])).fetch(request);
    return product.fetch(request, env);
  },
} satisfies ExportedHandler<BenchEnv>;
