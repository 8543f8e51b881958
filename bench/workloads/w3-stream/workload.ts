/**
 * W3a and W3b: one server-to-client stream of fixed-size items, the same
 * modules for both (they differ only in sizes and in the figure that counts).
 *
 * Every system streams the same thing: the client asks for `items` items of
 * `itemBytes` each, the server sends them one after the other from one
 * preallocated payload, and the client takes each item as a buffer of its
 * own, checks its size, and counts them. swarmnet's items also carry their
 * ident (the generator's `i`), which its client checks; the peers rely on
 * their transport's order.
 */
import { defineWorkload, scaled, type Figures, type Metric } from "../../workload.js";

export interface StreamParams {
  /** Items in the one measured stream. */
  readonly items: number;
  /** Size of each item, in bytes. */
  readonly itemBytes: number;
}

/** Every run reports both; each workload's table shows the one that matters for it. */
export type StreamMetric = "itemsPerSec" | "mbPerSec";

const ITEMS_METRIC: Metric<StreamMetric> = { key: "itemsPerSec", label: "throughput", unit: "items/s", better: "higher" };
const MB_METRIC: Metric<StreamMetric> = { key: "mbPerSec", label: "throughput", unit: "MB/s", better: "higher" };

const systems = {
  swarmnet: () => import("./swarmnet.js"),
  zeromq: () => import("./zeromq.js"),
  grpc: () => import("./grpc.js"),
  tcp: () => import("./tcp.js"),
} as const;

export const w3a = defineWorkload<StreamParams, StreamMetric>({
  id: "W3a",
  name: "stream small",
  description: "one stream of 200,000 items of 64 bytes",
  metrics: [ITEMS_METRIC],
  params: (scale) => ({ items: scaled(200_000, scale, 1_000), itemBytes: 64 }),
  systems,
});

export const w3b = defineWorkload<StreamParams, StreamMetric>({
  id: "W3b",
  name: "stream large",
  description: "one stream of 1,000 items of 1 MiB",
  metrics: [MB_METRIC],
  params: (scale) => ({ items: scaled(1_000, scale, 10), itemBytes: 1024 * 1024 }),
  systems,
});

/** The request the peers send: item count and item size, 4 bytes each, big-endian. */
export function encodeStreamRequest(items: number, itemBytes: number): Buffer {
  const request = Buffer.allocUnsafe(8);
  request.writeUInt32BE(items, 0);
  request.writeUInt32BE(itemBytes, 4);
  return request;
}

export function decodeStreamRequest(request: Uint8Array): StreamParams {
  if (request.length !== 8) throw new Error(`stream request of ${request.length} bytes, expected 8`);
  const view = Buffer.from(request.buffer, request.byteOffset, request.length);
  return { items: view.readUInt32BE(0), itemBytes: view.readUInt32BE(4) };
}

/** The one payload a server sends as every item of a given size (cached per size). */
export function payloadCache(): (bytes: number) => Buffer {
  const payloads = new Map<number, Buffer>();
  return (bytes) => {
    let payload = payloads.get(bytes);
    if (!payload) {
      payload = Buffer.alloc(bytes, 0x5a);
      payloads.set(bytes, payload);
    }
    return payload;
  };
}

/** Throws unless an item has the size asked for. */
export function checkItem(length: number, itemBytes: number): void {
  if (length !== itemBytes) throw new Error(`item of ${length} bytes, expected ${itemBytes}`);
}

/**
 * One whole stream of `items` items of `params.itemBytes`: requests it,
 * consumes every item (checking each with {@link checkItem}) and resolves
 * with how many arrived before the end of the stream.
 */
export type StreamOnce = (items: number) => Promise<number>;

/** Items in the untimed stream that settles a fresh connection before the timed one. */
const SETTLE_ITEMS = 16;

/**
 * The measured part, the same for every system: a short untimed stream to
 * settle the connection, then one timed stream of `params.items`, whose count
 * must be exact (a peer that dropped items fails the run).
 */
export async function measureStream(params: StreamParams, stream: StreamOnce): Promise<Figures<StreamMetric>> {
  const expect = (got: number, wanted: number): void => {
    if (got !== wanted) throw new Error(`stream delivered ${got} items, expected ${wanted}`);
  };
  const settle = Math.min(SETTLE_ITEMS, params.items);
  expect(await stream(settle), settle);
  const start = process.hrtime.bigint();
  const got = await stream(params.items);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  expect(got, params.items);
  return {
    itemsPerSec: got / seconds,
    mbPerSec: (got * params.itemBytes) / 1e6 / seconds,
  };
}
