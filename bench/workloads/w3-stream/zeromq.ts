/**
 * W3 on raw zeromq.js: the DEALER asks for a stream, the ROUTER sends one
 * ZeroMQ message per item and then an empty one as the end.
 *
 * Backpressure is a plain credit window, the same sizes swarmnet's streams
 * default to: the server runs at most WINDOW_ITEMS items and WINDOW_BYTES
 * bytes ahead of what the client has taken, and the client grants more every
 * quarter window. Without it a ROUTER cannot stream safely: at the high-water
 * mark it drops (or, `mandatory`, fails the send with EAGAIN). With it the
 * send queue needs no limit of its own (`sendHighWaterMark: 0`), so nothing is
 * ever dropped, and the client's count checks that.
 */
import * as zmq from "zeromq";
import { connectDealer, portOf } from "../../lib/zeromq.js";
import type { ClientPart, ServerPart } from "../../workload.js";
import {
  checkItem,
  decodeStreamRequest,
  encodeStreamRequest,
  measureStream,
  payloadCache,
  type StreamMetric,
  type StreamParams,
} from "./workload.js";

/** Items and bytes the server may run ahead of the client (swarmnet's defaults). */
const WINDOW_ITEMS = 2048;
const WINDOW_BYTES = 16 * 1024 * 1024;
const REQUEST_BYTES = 8;
/** A credit message: the count of items taken since the last one, 4 bytes. */
const CREDIT_BYTES = 4;
const END = Buffer.alloc(0);

/** What the server may still send on the stream in progress. */
class Credit {
  items = WINDOW_ITEMS;
  bytes = WINDOW_BYTES;
  #wake: (() => void) | undefined;

  grant(items: number, itemBytes: number): void {
    this.items += items;
    this.bytes += items * itemBytes;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Resolves once the credit covers one more item, `sent` having gone out. */
  async forNext(sent: number, itemBytes: number): Promise<void> {
    while (sent >= this.items || sent * itemBytes >= this.bytes) {
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }
}

export const server: ServerPart<StreamParams> = async (_params, { host }) => {
  const payloadOf = payloadCache();
  const router = new zmq.Router({ linger: 0, mandatory: true, sendHighWaterMark: 0 });
  await router.bind(`tcp://${host}:0`);
  // One stream at a time per client; credit comes in on the same socket while it is sent.
  const streams = new Map<string, { credit: Credit; itemBytes: number }>();
  let sending = Promise.resolve();
  const sendStream = async (routingId: Buffer, credit: Credit, items: number, itemBytes: number): Promise<void> => {
    const payload = payloadOf(itemBytes);
    for (let sent = 0; sent < items; sent++) {
      await credit.forNext(sent, itemBytes);
      await router.send([routingId, payload]);
    }
    await router.send([routingId, END]);
  };
  const loop = (async () => {
    for await (const [routingId, message] of router) {
      if (!routingId || !message) continue;
      const key = routingId.toString("latin1");
      if (message.length === REQUEST_BYTES) {
        const { items, itemBytes } = decodeStreamRequest(message);
        const credit = new Credit();
        streams.set(key, { credit, itemBytes });
        sending = sending.then(() => sendStream(routingId, credit, items, itemBytes));
      } else if (message.length === CREDIT_BYTES) {
        const stream = streams.get(key);
        stream?.credit.grant(message.readUInt32BE(0), stream.itemBytes);
      }
    }
  })();
  const ended = Promise.all([loop, sending]).catch((error: unknown) => {
    // Closing the socket ends the loops with an error; anything else is a bug.
    if (!router.closed) throw error;
  });
  return {
    port: portOf(router.lastEndpoint),
    async stop() {
      router.close();
      await ended;
    },
  };
};

function creditMessage(items: number): Buffer {
  const message = Buffer.allocUnsafe(CREDIT_BYTES);
  message.writeUInt32BE(items, 0);
  return message;
}

export const client: ClientPart<StreamParams, StreamMetric> = async (params, { host, port }) => {
  const dealer = connectDealer(host, port);
  const { itemBytes } = params;
  // Grant more every quarter window, in items or in bytes, whichever comes first.
  const grantEvery = Math.max(1, Math.min(WINDOW_ITEMS / 4, Math.floor(WINDOW_BYTES / 4 / itemBytes)));
  try {
    return await measureStream(params, async (items) => {
      await dealer.send(encodeStreamRequest(items, itemBytes));
      let count = 0;
      let unacked = 0;
      for (;;) {
        const [item] = await dealer.receive();
        if (!item) throw new Error("message without a frame");
        if (item.length === 0) return count;
        checkItem(item.length, itemBytes);
        count++;
        if (++unacked >= grantEvery) {
          await dealer.send(creditMessage(unacked));
          unacked = 0;
        }
      }
    });
  } finally {
    dealer.close();
  }
};
