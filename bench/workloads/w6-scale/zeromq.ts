/** W6 on raw zeromq.js: one echoing ROUTER, a DEALER (and TCP connection) per client. */
import { connectDealer, roundTrip, startRouterServer } from "../../lib/zeromq.js";
import type { ClientPart, ServerPart } from "../../workload.js";
import { measureScale, type ScaleMetric, type ScaleParams } from "./workload.js";

export const server: ServerPart<ScaleParams> = (params, { host }) =>
  // ZeroMQ's default listen backlog of 100 would have the kernel drop most of
  // a thousand simultaneous connects and the clients retry a second later.
  startRouterServer({ host, backlog: params.maxPoolSize, reply: (request) => request });

export const client: ClientPart<ScaleParams, ScaleMetric> = (params, context) =>
  measureScale(params, context, async () => {
    const dealer = connectDealer(context.host, context.port);
    return {
      ping: (payload) => roundTrip(dealer, payload),
      close: async () => dealer.close(),
    };
  });
