/**
 * W4/W7 on raw zeromq.js: a ROUTER that answers a file name with the file's
 * bytes; each DEALER keeps up to PIPELINE requests in flight (no round trip
 * per file) and writes each reply as it comes.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as zmq from "zeromq";
import { makeSmallFiles } from "../../lib/files.js";
import { connectDealer, portOf } from "../../lib/zeromq.js";
import type { ClientPart, ServerPart } from "../../workload.js";
import { measureFiles, type FilesMetric, type FilesParams } from "./workload.js";

/** Requests one DEALER keeps in flight. */
const PIPELINE = 64;

export const server: ServerPart<FilesParams> = async (params, { host }) => {
  const files = await makeSmallFiles(params.files, params.fileBytes);
  const router = new zmq.Router({ linger: 0 });
  await router.bind(`tcp://${host}:0`);
  // zeromq.js allows one send at a time: replies queue on this chain.
  let sending: Promise<void> = Promise.resolve();
  const loop = (async () => {
    for await (const [routingId, name] of router) {
      if (!routingId || !name) continue;
      // Read without awaiting in the receive loop: files are read concurrently.
      const bytes = readFile(join(files.dir, name.toString()));
      sending = sending.then(async () => router.send([routingId, name, await bytes]));
    }
  })().catch((error: unknown) => {
    if (!router.closed) throw error;
  });
  return {
    port: portOf(router.lastEndpoint),
    async stop() {
      router.close();
      await loop;
      await files.remove();
    },
  };
};

/** Downloads `names` over one DEALER with PIPELINE requests in flight. */
async function downloadOver(dealer: zmq.Dealer, names: readonly string[], dir: string): Promise<void> {
  let sent = 0;
  let received = 0;
  const writes: Promise<void>[] = [];
  while (sent < Math.min(PIPELINE, names.length)) await dealer.send(names[sent++]!);
  while (received < names.length) {
    const [name, bytes] = await dealer.receive();
    if (!name || !bytes) throw new Error("bad reply");
    received++;
    writes.push(writeFile(join(dir, name.toString()), bytes));
    if (sent < names.length) await dealer.send(names[sent++]!);
  }
  await Promise.all(writes);
}

export const client: ClientPart<FilesParams, FilesMetric> = (params, { host, port, warmup }) =>
  measureFiles(params, warmup, async (clients, dir) => {
    const dealers = Array.from({ length: clients }, () => connectDealer(host, port));
    return {
      async download(names) {
        // Files dealt out round-robin, one share per connection.
        await Promise.all(
          dealers.map((dealer, k) =>
            downloadOver(
              dealer,
              names.filter((_, i) => i % clients === k),
              dir,
            ),
          ),
        );
      },
      async close() {
        for (const dealer of dealers) dealer.close();
      },
    };
  });
