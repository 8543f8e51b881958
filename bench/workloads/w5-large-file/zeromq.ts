/**
 * W5 on raw zeromq.js, the naive way (the zguide's "one chunk per request"):
 * each DEALER asks for the next 256 KiB of its range, writes the reply at its
 * position, asks again. One chunk in flight per connection, no window.
 */
import { open, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import * as zmq from "zeromq";
import { makeLargeFile, ranges } from "../../lib/files.js";
import { connectDealer, portOf } from "../../lib/zeromq.js";
import type { ClientPart, ServerPart } from "../../workload.js";
import { measureLargeFile, type LargeFileMetric, type LargeFileParams } from "./workload.js";

const CHUNK = 256 * 1024;

export const server: ServerPart<LargeFileParams> = async (params, { host }) => {
  const file = await makeLargeFile(params.bytes);
  const fh = await open(file.path, "r");
  const size = (await fh.stat()).size;
  const router = new zmq.Router({ linger: 0 });
  await router.bind(`tcp://${host}:0`);
  let sending: Promise<void> = Promise.resolve();
  const loop = (async () => {
    for await (const [routingId, request] of router) {
      if (!routingId || !request) continue;
      // An empty request asks for the size; otherwise [offset, length] as two uint32s of 256-byte units... kept simple: JSON.
      const { offset, length } =
        request.length === 0 ? { offset: -1, length: 0 } : (JSON.parse(request.toString()) as { offset: number; length: number });
      if (offset < 0) {
        sending = sending.then(() => router.send([routingId, Buffer.from(String(size))]));
        continue;
      }
      const buf = Buffer.allocUnsafe(length);
      const read = fh.read(buf, 0, length, offset);
      sending = sending.then(async () => {
        const { bytesRead } = await read;
        await router.send([routingId, buf.subarray(0, bytesRead)]);
      });
    }
  })().catch((error: unknown) => {
    if (!router.closed) throw error;
  });
  return {
    port: portOf(router.lastEndpoint),
    async stop() {
      router.close();
      await loop;
      await fh.close();
      await file.remove();
    },
  };
};

async function fetchRange(dealer: zmq.Dealer, out: FileHandle, start: number, end: number): Promise<void> {
  for (let offset = start; offset < end;) {
    const length = Math.min(CHUNK, end - offset);
    await dealer.send(JSON.stringify({ offset, length }));
    const [chunk] = await dealer.receive();
    if (!chunk || chunk.length === 0) throw new Error(`short read at ${offset}`);
    await out.write(chunk, 0, chunk.length, offset);
    offset += chunk.length;
  }
}

export const client: ClientPart<LargeFileParams, LargeFileMetric> = (params, { host, port, warmup }) =>
  measureLargeFile(
    params,
    warmup,
    async (clients, dir) => {
      const dealers = Array.from({ length: clients }, () => connectDealer(host, port));
      return {
        async download() {
          await dealers[0]!.send(Buffer.alloc(0));
          const [sizeReply] = await dealers[0]!.receive();
          const size = Number(sizeReply?.toString());
          const out = await open(join(dir, "big.bin"), "w");
          try {
            await Promise.all(ranges(size, clients).map((r, k) => fetchRange(dealers[k]!, out, r.start, r.end)));
          } finally {
            await out.close();
          }
        },
        async close() {
          for (const dealer of dealers) dealer.close();
        },
      };
    },
    async (path) => (await stat(path)).size,
  );
