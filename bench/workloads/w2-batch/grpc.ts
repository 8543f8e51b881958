/** W2 on grpc-js: a unary method answering 1 KiB, one channel per client. */
import type * as grpc from "@grpc/grpc-js";
import { callUnary, connectGrpc, rawUnaryMethod, startGrpcServer } from "../../lib/grpc.js";
import type { ClientPart, ServerPart } from "../../workload.js";
import { measureBatch, requestBytes, type BatchMetric, type BatchParams } from "./workload.js";

const BatchService = {
  get: rawUnaryMethod("/swarmnet.bench.Batch/Get"),
} satisfies grpc.ServiceDefinition;

export const server: ServerPart<BatchParams> = (params, { host }) => {
  const reply = Buffer.alloc(params.replyBytes, 0x5a);
  const get: grpc.handleUnaryCall<Buffer, Buffer> = (_call, callback) => callback(null, reply);
  return startGrpcServer(host, BatchService, { get });
};

export const client: ClientPart<BatchParams, BatchMetric> = async (params, { host, port }) => {
  const clients = Array.from({ length: params.clients }, () => connectGrpc(host, port));
  try {
    return await measureBatch(
      params,
      clients.map((grpcClient) => (index) => callUnary(grpcClient, BatchService.get, requestBytes(index))),
    );
  } finally {
    for (const grpcClient of clients) grpcClient.close();
  }
};
