/** W1 on raw zeromq.js: a ROUTER that echoes, one DEALER that waits for each reply. */
import { connectDealer, roundTrip, startRouterServer } from "../../lib/zeromq.js";
import type { ClientPart, ServerPart } from "../../workload.js";
import { measurePings, type PingMetric, type PingParams } from "./workload.js";

export const server: ServerPart<PingParams> = (_params, { host }) => startRouterServer({ host, reply: (request) => request });

export const client: ClientPart<PingParams, PingMetric> = async (params, { host, port }) => {
  const dealer = connectDealer(host, port);
  try {
    return await measurePings(params, (payload) => roundTrip(dealer, payload));
  } finally {
    dealer.close();
  }
};
