/**
 * W3 on swarmnet: a generator subroutine yielding `[i, payload]`, consumed
 * with `for await` over `client.stream()`, through the public API only.
 */
import { Controller, Gateway } from "../../../runtime/index.js";
import type { ClientPart, ServerPart } from "../../workload.js";
import { checkItem, measureStream, payloadCache, type StreamMetric, type StreamParams } from "./workload.js";

const SUBROUTINE = "items";

export const server: ServerPart<StreamParams> = async (_params, { host }) => {
  const payloadOf = payloadCache();
  const gateway = new Gateway({ host, port: 0 });
  gateway.addSubroutine(SUBROUTINE, function* (items: number, itemBytes: number) {
    const payload = payloadOf(itemBytes);
    for (let i = 0; i < items; i++) yield [i, payload];
  });
  await gateway.start();
  return { port: gateway.port, stop: () => gateway.stop() };
};

export const client: ClientPart<StreamParams, StreamMetric> = async (params, { host, port }) => {
  const controller = new Controller({ host, port });
  try {
    const client = await controller.getClient();
    return await measureStream(params, async (items) => {
      let count = 0;
      for await (const [ident, buf] of client.stream<Uint8Array>(SUBROUTINE, [items, params.itemBytes])) {
        if (ident !== count) throw new Error(`item ${count} came with ident ${ident}`);
        checkItem(buf.length, params.itemBytes);
        count++;
      }
      return count;
    });
  } finally {
    // Closes the client's handler too.
    await controller.close();
  }
};
