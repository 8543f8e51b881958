/** W6 on raw zeromq.js: one echoing ROUTER, a DEALER (and TCP connection) per client. */
import { context as zmqContext } from "zeromq";
import { connectDealer, roundTrip, startRouterServer } from "../../lib/zeromq.js";
import type { ClientPart, ServerPart } from "../../workload.js";
import { measureScale, type ScaleMetric, type ScaleParams } from "./workload.js";

export const server: ServerPart<ScaleParams> = (params, { host }) =>
  // ZeroMQ's default listen backlog of 100 would have the kernel drop most of
  // a thousand simultaneous connects and the clients retry a second later.
  startRouterServer({ host, backlog: params.maxPoolSize, reply: (request) => request });

export const client: ClientPart<ScaleParams, ScaleMetric> = (params, context) => {
  // libzmq's default context allows 1,023 sockets; raised as swarmnet's transport raises it (W6b: 10,000 clients).
  if (zmqContext.maxSockets < params.clients + 16) zmqContext.maxSockets = Math.min(params.clients + 16, zmqContext.maxSocketsLimit);
  return measureScale(params, context, async () => {
    const dealer = connectDealer(context.host, context.port);
    return {
      ping: (payload) => roundTrip(dealer, payload),
      close: async () => dealer.close(),
    };
  });
};
