/** W6 on swarmnet: a thousand clients from one controller on one gateway. */
import { Controller, Gateway } from "../../../runtime/index.js";
import type { ClientPart, ServerPart } from "../../workload.js";
import { measureScale, type ScaleMetric, type ScaleParams } from "./workload.js";

export const server: ServerPart<ScaleParams> = async (params, { host }) => {
  const gateway = new Gateway({ host, port: 0, maxPoolSize: params.maxPoolSize });
  await gateway.start();
  return { port: gateway.port, stop: () => gateway.stop() };
};

export const client: ClientPart<ScaleParams, ScaleMetric> = async (params, context) => {
  const controller = new Controller({ host: context.host, port: context.port });
  try {
    return await measureScale(params, context, async () => {
      const client = await controller.getClient();
      return {
        ping: (payload) => client.ping(payload),
        close: () => client.closeHandler(),
      };
    });
  } finally {
    await controller.close();
  }
};
