/** W1 on swarmnet: `client.ping()` against a gateway, through the public API only. */
import { Controller, Gateway } from "../../../runtime/index.js";
import type { ClientPart, ServerPart } from "../../workload.js";
import { measurePings, type PingMetric, type PingParams } from "./workload.js";

export const server: ServerPart<PingParams> = async (_params, { host }) => {
  const gateway = new Gateway({ host, port: 0 });
  await gateway.start();
  return { port: gateway.port, stop: () => gateway.stop() };
};

export const client: ClientPart<PingParams, PingMetric> = async (params, { host, port }) => {
  const controller = new Controller({ host, port });
  try {
    const client = await controller.getClient();
    return await measurePings(params, (payload) => client.ping(payload));
  } finally {
    // Closes the client's handler too.
    await controller.close();
  }
};
