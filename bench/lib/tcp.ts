/**
 * Raw TCP with Node's `net` and the simplest framing that works: a 4-byte
 * big-endian length, then the payload. This is the machine's limit for
 * request/reply, not something a user would ship.
 */
import net from "node:net";
import type { RunningServer } from "../workload.js";

const HEADER_BYTES = 4;

/** Length prefix and payload in one buffer, so a frame is one write. */
export function frame(payload: Uint8Array): Buffer {
  const framed = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  framed.writeUInt32BE(payload.length, 0);
  framed.set(payload, HEADER_BYTES);
  return framed;
}

/** Cuts a byte stream into frames; copies only when a frame spans chunks. */
export class FrameReader {
  readonly #onFrame: (payload: Buffer) => void;
  #pending: Buffer = Buffer.alloc(0);

  constructor(onFrame: (payload: Buffer) => void) {
    this.#onFrame = onFrame;
  }

  push(chunk: Buffer): void {
    let data = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    while (data.length >= HEADER_BYTES) {
      const end = HEADER_BYTES + data.readUInt32BE(0);
      if (data.length < end) break;
      this.#onFrame(data.subarray(HEADER_BYTES, end));
      data = data.subarray(end);
    }
    this.#pending = data;
  }
}

/** A server that answers each frame with `reply(frame)`, already framed. */
export function startFrameServer(host: string, reply: (payload: Buffer) => Buffer): Promise<RunningServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const reader = new FrameReader((payload) => socket.write(reply(payload)));
    socket.on("data", (chunk: Buffer) => reader.push(chunk));
    socket.on("error", () => socket.destroy());
    socket.on("close", () => sockets.delete(socket));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        stop: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

/** A client connection with one request in flight at a time. */
export class FrameClient {
  readonly #socket: net.Socket;
  #waiting: { resolve: (payload: Buffer) => void; reject: (error: Error) => void } | undefined;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    const reader = new FrameReader((payload) => {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      waiting?.resolve(payload);
    });
    socket.on("data", (chunk: Buffer) => reader.push(chunk));
    socket.on("error", (error) => this.#waiting?.reject(error));
    socket.on("close", () => this.#waiting?.reject(new Error("connection closed")));
  }

  static connect(host: string, port: number): Promise<FrameClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true }, () => {
        socket.off("error", reject);
        resolve(new FrameClient(socket));
      });
      socket.once("error", reject);
    });
  }

  /** Sends an already framed request and resolves with the reply's payload. */
  request(framed: Buffer): Promise<Buffer> {
    if (this.#waiting) return Promise.reject(new Error("one request at a time"));
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#socket.write(framed);
    });
  }

  close(): void {
    this.#socket.destroy();
  }
}
