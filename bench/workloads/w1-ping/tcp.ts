/** W1 on raw TCP: length-prefixed frames echoed back, one at a time. */
import { FrameClient, frame, startFrameServer } from "../../lib/tcp.js";
import type { ClientPart, ServerPart } from "../../workload.js";
import { measurePings, type PingMetric, type PingParams } from "./workload.js";

export const server: ServerPart<PingParams> = (_params, { host }) => startFrameServer(host, frame);

export const client: ClientPart<PingParams, PingMetric> = async (params, { host, port }) => {
  const connection = await FrameClient.connect(host, port);
  try {
    return await measurePings(params, (payload) => connection.request(frame(payload)));
  } finally {
    connection.close();
  }
};
