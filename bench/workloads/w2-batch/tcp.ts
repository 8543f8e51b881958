/** W2 on raw TCP: length-prefixed requests answered with a framed 1 KiB, one connection per client. */
import { FrameClient, frame, startFrameServer } from "../../lib/tcp.js";
import type { ClientPart, ServerPart } from "../../workload.js";
import { measureBatch, requestBytes, type BatchMetric, type BatchParams } from "./workload.js";

export const server: ServerPart<BatchParams> = (params, { host }) => {
  const reply = frame(Buffer.alloc(params.replyBytes, 0x5a));
  return startFrameServer(host, () => reply);
};

export const client: ClientPart<BatchParams, BatchMetric> = async (params, { host, port }) => {
  const connections = await Promise.all(Array.from({ length: params.clients }, () => FrameClient.connect(host, port)));
  try {
    return await measureBatch(
      params,
      connections.map((connection) => (index) => connection.request(frame(requestBytes(index)))),
    );
  } finally {
    for (const connection of connections) connection.close();
  }
};
