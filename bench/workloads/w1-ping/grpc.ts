/** W1 on grpc-js: one unary echo method over raw Buffers, one call at a time. */
import type * as grpc from "@grpc/grpc-js";
import { callUnary, connectGrpc, rawUnaryMethod, startGrpcServer } from "../../lib/grpc.js";
import type { ClientPart, ServerPart } from "../../workload.js";
import { measurePings, type PingMetric, type PingParams } from "./workload.js";

const PingService = {
  ping: rawUnaryMethod("/swarmnet.bench.Ping/Ping"),
} satisfies grpc.ServiceDefinition;

const echo: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => callback(null, call.request);

export const server: ServerPart<PingParams> = (_params, { host }) => startGrpcServer(host, PingService, { ping: echo });

export const client: ClientPart<PingParams, PingMetric> = async (params, { host, port }) => {
  const grpcClient = connectGrpc(host, port);
  try {
    return await measurePings(params, (payload) => callUnary(grpcClient, PingService.ping, payload));
  } finally {
    grpcClient.close();
  }
};
