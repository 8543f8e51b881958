/** W5 on swarmnet: `getFilesFromGateway({ files })` on one client, and split into ranges over a swarm. */
import { stat } from "node:fs/promises";
import { Controller, Gateway } from "../../../runtime/index.js";
import { FILES_FOLDER, makeLargeFile } from "../../lib/files.js";
import type { ClientPart, ServerPart } from "../../workload.js";
import { measureLargeFile, type LargeFileMetric, type LargeFileParams } from "./workload.js";

export const server: ServerPart<LargeFileParams> = async (params, { host }) => {
  const file = await makeLargeFile(params.bytes);
  const gateway = new Gateway({ host, port: 0, maxPoolSize: 16, fileRoots: [file.root] });
  await gateway.start();
  return {
    port: gateway.port,
    stop: async () => {
      await gateway.stop();
      await file.remove();
    },
  };
};

export const client: ClientPart<LargeFileParams, LargeFileMetric> = (params, { host, port, warmup }) =>
  measureLargeFile(
    params,
    warmup,
    async (clients, dir) => {
      const controller = new Controller({ host, port, downloadDir: dir, timeoutMs: 30_000 });
      const swarm = await controller.getSwarm(clients);
      const request = { files: [`${FILES_FOLDER}/big.bin`] };
      return {
        async download() {
          if (clients === 1) await swarm.clients[0]!.getFilesFromGateway(request);
          // The default split threshold (32 MiB) cuts the file into one range per client.
          else await swarm.getFilesFromGateway(request);
        },
        close: () => controller.close(),
      };
    },
    async (path) => (await stat(path)).size,
  );
