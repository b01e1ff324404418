// A chat room member: lines typed are sent to the server on this client's
// pipe; what the server relays is printed.
//   node examples/chat/client.ts <name>
import { createInterface } from "node:readline";
import { Client } from "sharevars";

const url = process.env.SHAREVARS_URL ?? "http://127.0.0.1:8787";
const space = process.env.SHAREVARS_SPACE ?? "chat";
const id = process.argv[2] ?? `guest-${process.pid}`;

const client = await Client.connect(url, { space, id });
console.log(`joined ${JSON.stringify(space)} as ${id}; type a line to send it, Ctrl-D to leave`);
// Who is online now, then each change (the server keeps the roster in the global dict).
const showOnline = (names: string[]) => console.log(`(online: ${names.join(", ")})`);
if (client.globals["online"] !== undefined) showOnline(client.globals["online"]);
client.globals.on("change", ({ key, value }) => {
  if (key === "online") showOnline(value as string[]);
});

const input = createInterface({ input: process.stdin });
input.on("line", (line) => void client.send(line));
input.on("close", async () => {
  await client.close();
  process.exit(0);
});

for (;;) console.log(await client.recv());
