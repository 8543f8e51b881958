/** W2 on raw zeromq.js: a ROUTER answering 1 KiB, one DEALER per client. */
import { connectDealer, roundTrip, startRouterServer } from "../../lib/zeromq.js";
import type { ClientPart, ServerPart } from "../../workload.js";
import { measureBatch, requestBytes, type BatchMetric, type BatchParams } from "./workload.js";

export const server: ServerPart<BatchParams> = (params, { host }) => {
  const reply = Buffer.alloc(params.replyBytes, 0x5a);
  return startRouterServer({ host, reply: () => [reply] });
};

export const client: ClientPart<BatchParams, BatchMetric> = async (params, { host, port }) => {
  const dealers = Array.from({ length: params.clients }, () => connectDealer(host, port));
  try {
    return await measureBatch(
      params,
      dealers.map((dealer) => (index) => roundTrip(dealer, requestBytes(index))),
    );
  } finally {
    for (const dealer of dealers) dealer.close();
  }
};
