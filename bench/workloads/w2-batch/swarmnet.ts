/** W2 on swarmnet: a swarm of clients calling one batch-get subroutine. */
import { Controller, Gateway } from "../../../runtime/index.js";
import type { ClientPart, ServerPart } from "../../workload.js";
import { measureBatch, type BatchMetric, type BatchParams } from "./workload.js";

const SUBROUTINE = "get";

export const server: ServerPart<BatchParams> = async (params, { host }) => {
  const reply = new Uint8Array(params.replyBytes).fill(0x5a);
  const gateway = new Gateway({ host, port: 0, maxPoolSize: params.clients });
  gateway.addSubroutine(SUBROUTINE, () => reply);
  await gateway.start();
  return { port: gateway.port, stop: () => gateway.stop() };
};

export const client: ClientPart<BatchParams, BatchMetric> = async (params, { host, port }) => {
  const controller = new Controller({ host, port });
  try {
    const swarm = await controller.getSwarm(params.clients);
    return await measureBatch(
      params,
      swarm.clients.map((client) => (index) => client.getSubroutineBatch<Uint8Array>(SUBROUTINE, [index])),
    );
  } finally {
    // Closes the swarm's handlers too.
    await controller.close();
  }
};
