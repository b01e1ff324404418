// The chat room's server: relays what each client sends on its pipe to every
// connected client, and keeps the room's state in the global dict.
//   node examples/chat/server.ts
import { Server, type ClientPeer } from "sharevars";

const url = process.env.SHAREVARS_URL ?? "http://127.0.0.1:8787";
const space = process.env.SHAREVARS_SPACE ?? "chat";
const token = process.env.SHAREVARS_TOKEN ?? "dev-server-token";

const server = await Server.connect(url, { space, token });
const listening = new Set<string>();

async function broadcast(line: string) {
  await Promise.all(server.clients.map((peer) => peer.send(line)));
}

async function listen(peer: ClientPeer) {
  if (listening.has(peer.id)) return;
  listening.add(peer.id);
  for (;;) {
    const text: string = await peer.recv();
    server["messages"] = (server["messages"] ?? 0) + 1;
    await broadcast(`${peer.id}: ${text}`);
  }
}

function roster() {
  server["online"] = server.clients.ids();
}

server.on("connect", (peer) => {
  roster();
  void broadcast(`* ${peer.id} joined`);
  void listen(peer);
});
server.on("disconnect", (id) => {
  roster();
  void broadcast(`* ${id} left`);
});
for (const peer of server.clients) void listen(peer);
roster();
console.log(`chat server ready in space ${JSON.stringify(space)}`);
