/**
 * grpc-js the way a user would reach for it without protobuf: a hand-written
 * service definition whose messages are raw Buffers, passed through as is.
 */
import * as grpc from "@grpc/grpc-js";
import type { RunningServer } from "../workload.js";

const identity = (value: Buffer): Buffer => value;

/** A unary method whose request and response are raw bytes. */
export function rawUnaryMethod(path: string): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

/** A server-streaming method: one raw request, a stream of raw replies. */
export function rawServerStreamMethod(path: string): grpc.MethodDefinition<Buffer, Buffer> {
  return { ...rawUnaryMethod(path), responseStream: true };
}

export function startGrpcServer(
  host: string,
  service: grpc.ServiceDefinition,
  implementation: grpc.UntypedServiceImplementation,
): Promise<RunningServer> {
  const server = new grpc.Server();
  server.addService(service, implementation);
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (error, port) => {
      if (error) {
        reject(error);
        return;
      }
      resolve({
        port,
        stop: async () => server.forceShutdown(),
      });
    });
  });
}

/**
 * A client on a channel of its own. Without `use_local_subchannel_pool`,
 * grpc-js would share one TCP connection among all clients for the same
 * address; the other systems give each client its own connection, so this does too.
 */
export function connectGrpc(host: string, port: number): grpc.Client {
  return new grpc.Client(`${host}:${port}`, grpc.credentials.createInsecure(), {
    "grpc.use_local_subchannel_pool": 1,
  });
}

/** One unary call, as a promise. */
export function callUnary(client: grpc.Client, method: grpc.MethodDefinition<Buffer, Buffer>, request: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, request, (error, reply) => {
      if (error) reject(error);
      else if (!reply) reject(new Error(`${method.path}: empty reply`));
      else resolve(reply);
    });
  });
}
