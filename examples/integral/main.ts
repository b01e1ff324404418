// One command for the whole demo: four client processes and the server.
//   npm run dev                      (in another terminal)
//   npm run example:integral
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const clientScript = fileURLToPath(new URL("./client.ts", import.meta.url));
const serverScript = fileURLToPath(new URL("./server.ts", import.meta.url));
const space = process.env.SHAREVARS_SPACE ?? `integral-${Date.now()}`;
const env = { ...process.env, SHAREVARS_SPACE: space };

const run = (script: string, arg: string) =>
  new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [script, arg], { env, stdio: "inherit" });
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${script} ${arg} exited with ${code}`))));
  });

await Promise.all([
  run(serverScript, process.argv[2] ?? "400"),
  ...["alpha", "beta", "gamma", "delta"].map((id) => run(clientScript, id)),
]);
