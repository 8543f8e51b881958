/**
 * W4/W7 on raw TCP: a length-prefixed file name in, the length-prefixed file
 * out, in request order; each connection keeps up to PIPELINE requests in flight.
 */
import { readFile, writeFile } from "node:fs/promises";
import net from "node:net";
import { join } from "node:path";
import { makeSmallFiles } from "../../lib/files.js";
import { FrameReader, frame } from "../../lib/tcp.js";
import type { ClientPart, ServerPart } from "../../workload.js";
import { measureFiles, type FilesMetric, type FilesParams } from "./workload.js";

const PIPELINE = 64;

export const server: ServerPart<FilesParams> = async (params, { host }) => {
  const files = await makeSmallFiles(params.files, params.fileBytes);
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    let chain = Promise.resolve();
    // Reads run concurrently; replies go out in request order.
    const reader = new FrameReader((name) => {
      const bytes = readFile(join(files.dir, name.toString()));
      chain = chain.then(async () => void socket.write(frame(await bytes)));
    });
    socket.on("data", (chunk: Buffer) => reader.push(chunk));
    socket.on("error", () => socket.destroy());
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => srv.listen(0, host, resolve));
  return {
    port: (srv.address() as net.AddressInfo).port,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
      await files.remove();
    },
  };
};

function connect(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true }, () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** Downloads `names` over one connection with PIPELINE requests in flight. */
function downloadOver(socket: net.Socket, names: readonly string[], dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (names.length === 0) return resolve();
    let sent = 0;
    let received = 0;
    const writes: Promise<void>[] = [];
    const reader = new FrameReader((bytes) => {
      // A view into the socket's chunk: copied by writeFile's own write, not by us.
      writes.push(writeFile(join(dir, names[received++]!), bytes));
      if (sent < names.length) socket.write(frame(Buffer.from(names[sent++]!)));
      if (received === names.length) {
        socket.off("data", onData);
        Promise.all(writes).then(() => resolve(), reject);
      }
    });
    const onData = (chunk: Buffer): void => reader.push(chunk);
    socket.on("data", onData);
    socket.once("error", reject);
    while (sent < Math.min(PIPELINE, names.length)) socket.write(frame(Buffer.from(names[sent++]!)));
  });
}

export const client: ClientPart<FilesParams, FilesMetric> = (params, { host, port, warmup }) =>
  measureFiles(params, warmup, async (clients, dir) => {
    const sockets = await Promise.all(Array.from({ length: clients }, () => connect(host, port)));
    return {
      async download(names) {
        await Promise.all(
          sockets.map((socket, k) =>
            downloadOver(
              socket,
              names.filter((_, i) => i % clients === k),
              dir,
            ),
          ),
        );
      },
      async close() {
        for (const s of sockets) s.destroy();
      },
    };
  });
