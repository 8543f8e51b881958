/**
 * W3 on grpc-js: a server-streaming method over raw Buffers; the server
 * honours `write()`'s backpressure, the client reads with `for await`.
 */
import type * as grpc from "@grpc/grpc-js";
import { connectGrpc, rawServerStreamMethod, startGrpcServer } from "../../lib/grpc.js";
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

const StreamService = {
  items: rawServerStreamMethod("/swarmnet.bench.Stream/Items"),
} satisfies grpc.ServiceDefinition;

/** Resolves when the call can take more writes, or when the client has gone. */
function drainedOrCancelled(call: grpc.ServerWritableStream<Buffer, Buffer>): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      call.off("drain", done);
      call.off("cancelled", done);
      resolve();
    };
    call.on("drain", done);
    call.on("cancelled", done);
  });
}

export const server: ServerPart<StreamParams> = (_params, { host }) => {
  const payloadOf = payloadCache();
  const items: grpc.handleServerStreamingCall<Buffer, Buffer> = (call) => {
    void (async () => {
      const { items: count, itemBytes } = decodeStreamRequest(call.request);
      const payload = payloadOf(itemBytes);
      let cancelled = false;
      call.once("cancelled", () => (cancelled = true));
      for (let i = 0; i < count && !cancelled; i++) {
        if (!call.write(payload)) await drainedOrCancelled(call);
      }
      call.end();
    })().catch((error: unknown) => call.destroy(error instanceof Error ? error : new Error(String(error))));
  };
  return startGrpcServer(host, StreamService, { items });
};

export const client: ClientPart<StreamParams, StreamMetric> = async (params, { host, port }) => {
  const grpcClient = connectGrpc(host, port);
  const method = StreamService.items;
  try {
    return await measureStream(params, async (items) => {
      const call = grpcClient.makeServerStreamRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        encodeStreamRequest(items, params.itemBytes),
      );
      let count = 0;
      for await (const item of call as AsyncIterable<Buffer>) {
        checkItem(item.length, params.itemBytes);
        count++;
      }
      return count;
    });
  } finally {
    grpcClient.close();
  }
};
