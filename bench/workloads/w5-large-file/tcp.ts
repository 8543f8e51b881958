/**
 * W5 on raw TCP, the machine's limit: each connection asks for a byte range
 * and the server pipes it from a read stream (1 MiB reads) into the socket;
 * the client writes what arrives at its position, with stream backpressure.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import net from "node:net";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { makeLargeFile, ranges } from "../../lib/files.js";
import { FrameReader, frame } from "../../lib/tcp.js";
import type { ClientPart, ServerPart } from "../../workload.js";
import { measureLargeFile, type LargeFileMetric, type LargeFileParams } from "./workload.js";

const HIGH_WATER_MARK = 1024 * 1024;

export const server: ServerPart<LargeFileParams> = async (params, { host }) => {
  const file = await makeLargeFile(params.bytes);
  const size = (await stat(file.path)).size;
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((socket) => {
    sockets.add(socket);
    // One framed request: "size", or "start end" for a range sent raw until the end.
    const reader = new FrameReader((request) => {
      const text = request.toString();
      if (text === "size") {
        socket.end(frame(Buffer.from(String(size))));
        return;
      }
      const [start, end] = text.split(" ").map(Number) as [number, number];
      createReadStream(file.path, { start, end: end - 1, highWaterMark: HIGH_WATER_MARK }).pipe(socket);
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
      await file.remove();
    },
  };
};

function connect(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port }, () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

async function sizeOf(host: string, port: number): Promise<number> {
  const socket = await connect(host, port);
  return new Promise((resolve, reject) => {
    const reader = new FrameReader((payload) => resolve(Number(payload.toString())));
    socket.on("data", (chunk: Buffer) => reader.push(chunk));
    socket.once("error", reject);
    socket.write(frame(Buffer.from("size")));
  });
}

export const client: ClientPart<LargeFileParams, LargeFileMetric> = (params, { host, port, warmup }) =>
  measureLargeFile(
    params,
    warmup,
    async (clients, dir) => {
      const sockets = await Promise.all(Array.from({ length: clients }, () => connect(host, port)));
      return {
        async download() {
          const size = await sizeOf(host, port);
          const path = join(dir, "big.bin");
          await (await open(path, "w")).close();
          await Promise.all(
            ranges(size, clients).map(async (r, k) => {
              const socket = sockets[k]!;
              socket.write(frame(Buffer.from(`${r.start} ${r.end}`)));
              // The server ends the socket after the range: the pipeline finishes with it.
              await pipeline(socket, createWriteStream(path, { flags: "r+", start: r.start, highWaterMark: HIGH_WATER_MARK }));
            }),
          );
        },
        async close() {
          for (const s of sockets) s.destroy();
        },
      };
    },
    async (path) => (await stat(path)).size,
  );
