/**
 * W3 on raw TCP: the client sends one 8-byte request, the server answers with
 * one length-prefixed frame per item and a zero-length frame as the end.
 * Small frames are coalesced into 64 KiB writes; a large item goes out as its
 * header and payload in one corked write. The server waits for `drain` when
 * Node holds more than a few MiB unsent.
 */
import net from "node:net";
import type { ClientPart, RunningServer, ServerPart } from "../../workload.js";
import {
  checkItem,
  decodeStreamRequest,
  encodeStreamRequest,
  measureStream,
  payloadCache,
  type StreamMetric,
  type StreamParams,
} from "./workload.js";

const HEADER_BYTES = 4;
/** Frames smaller than this are copied into shared writes of this size. */
const COALESCE_BYTES = 64 * 1024;
/** Unsent bytes Node may hold for a socket before the server waits for `drain`. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
const REQUEST_BYTES = 8;
const EMPTY = Buffer.alloc(0);

/**
 * Cuts a byte stream into length-prefixed frames. A frame inside one chunk is
 * a view of it; a frame spread over several chunks is joined with one copy.
 */
class FrameSplitter {
  readonly #onFrame: (payload: Buffer) => void;
  #chunks: Buffer[] = [];
  /** Where the unread bytes start in `#chunks[0]`. */
  #offset = 0;
  #buffered = 0;
  /** Payload length of the frame whose header has been read, or -1. */
  #need = -1;

  constructor(onFrame: (payload: Buffer) => void) {
    this.#onFrame = onFrame;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    for (;;) {
      if (this.#need < 0) {
        if (this.#buffered < HEADER_BYTES) return;
        this.#need = this.#take(HEADER_BYTES).readUInt32BE(0);
      }
      if (this.#buffered < this.#need) return;
      const payload = this.#take(this.#need);
      this.#need = -1;
      this.#onFrame(payload);
    }
  }

  /** The next `n` buffered bytes (the caller checked they are there). */
  #take(n: number): Buffer {
    if (n === 0) return EMPTY;
    this.#buffered -= n;
    const first = this.#chunks[0]!;
    const available = first.length - this.#offset;
    if (n <= available) {
      const out = first.subarray(this.#offset, this.#offset + n);
      this.#offset += n;
      if (this.#offset === first.length) this.#drop();
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0]!;
      const count = Math.min(n - filled, chunk.length - this.#offset);
      chunk.copy(out, filled, this.#offset, this.#offset + count);
      filled += count;
      this.#offset += count;
      if (this.#offset === chunk.length) this.#drop();
    }
    return out;
  }

  #drop(): void {
    this.#chunks.shift();
    this.#offset = 0;
  }
}

function writable(socket: net.Socket): Promise<void> {
  if (socket.writableLength < MAX_BUFFERED_BYTES) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off("drain", done);
      socket.off("close", done);
      resolve();
    };
    socket.on("drain", done);
    socket.on("close", done);
  });
}

async function sendStream(socket: net.Socket, items: number, payload: Buffer): Promise<void> {
  const frameBytes = HEADER_BYTES + payload.length;
  if (frameBytes <= COALESCE_BYTES) {
    const perWrite = Math.floor(COALESCE_BYTES / frameBytes);
    for (let sent = 0; sent < items && !socket.destroyed;) {
      const n = Math.min(perWrite, items - sent);
      const out = Buffer.allocUnsafe(n * frameBytes);
      for (let k = 0, at = 0; k < n; k++, at += frameBytes) {
        out.writeUInt32BE(payload.length, at);
        payload.copy(out, at + HEADER_BYTES);
      }
      socket.write(out);
      sent += n;
      await writable(socket);
    }
  } else {
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    header.writeUInt32BE(payload.length, 0);
    for (let i = 0; i < items && !socket.destroyed; i++) {
      socket.cork();
      socket.write(header);
      socket.write(payload);
      socket.uncork();
      await writable(socket);
    }
  }
  socket.write(Buffer.alloc(HEADER_BYTES)); // the end: a zero-length frame
}

function startStreamServer(host: string, payloadOf: (bytes: number) => Buffer): Promise<RunningServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    let request = Buffer.alloc(0);
    let streaming = Promise.resolve();
    socket.on("data", (chunk: Buffer) => {
      request = Buffer.concat([request, chunk]);
      while (request.length >= REQUEST_BYTES) {
        const { items, itemBytes } = decodeStreamRequest(request.subarray(0, REQUEST_BYTES));
        request = request.subarray(REQUEST_BYTES);
        streaming = streaming.then(() => sendStream(socket, items, payloadOf(itemBytes)));
      }
    });
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

export const server: ServerPart<StreamParams> = (_params, { host }) => startStreamServer(host, payloadCache());

function connect(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true }, () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

export const client: ClientPart<StreamParams, StreamMetric> = async (params, { host, port }) => {
  const socket = await connect(host, port);
  /** The stream being read: its count so far and how it settles. */
  let current: { count: number; resolve: (count: number) => void; reject: (error: Error) => void } | undefined;
  const fail = (error: Error): void => {
    const stream = current;
    current = undefined;
    stream?.reject(error);
  };
  const splitter = new FrameSplitter((payload) => {
    const stream = current;
    if (!stream) return fail(new Error("frame outside a stream"));
    if (payload.length === 0) {
      current = undefined;
      stream.resolve(stream.count);
      return;
    }
    try {
      checkItem(payload.length, params.itemBytes);
    } catch (error) {
      fail(error as Error);
      return;
    }
    stream.count++;
  });
  socket.on("data", (chunk: Buffer) => splitter.push(chunk));
  socket.on("error", fail);
  socket.on("close", () => fail(new Error("connection closed")));
  try {
    return await measureStream(
      params,
      (items) =>
        new Promise<number>((resolve, reject) => {
          current = { count: 0, resolve, reject };
          socket.write(encodeStreamRequest(items, params.itemBytes));
        }),
    );
  } finally {
    socket.destroy();
  }
};
