/** W4/W7 on swarmnet: `getFilesFromGateway({ folder })` on one client, and on a swarm of 8. */
import { Controller, Gateway } from "../../../runtime/index.js";
import { FILES_FOLDER, makeSmallFiles } from "../../lib/files.js";
import type { ClientPart, ServerPart } from "../../workload.js";
import { measureFiles, type FilesMetric, type FilesParams } from "./workload.js";

export const server: ServerPart<FilesParams> = async (params, { host }) => {
  const files = await makeSmallFiles(params.files, params.fileBytes);
  const gateway = new Gateway({ host, port: 0, maxPoolSize: 16, fileRoots: [files.root] });
  await gateway.start();
  return {
    port: gateway.port,
    stop: async () => {
      await gateway.stop();
      await files.remove();
    },
  };
};

export const client: ClientPart<FilesParams, FilesMetric> = (params, { host, port, warmup }) =>
  measureFiles(params, warmup, async (clients, dir) => {
    const controller = new Controller({ host, port, downloadDir: dir, timeoutMs: 30_000 });
    const swarm = await controller.getSwarm(clients);
    return {
      async download(names, all) {
        const request = all ? { folder: FILES_FOLDER } : { files: names.map((n) => `${FILES_FOLDER}/${n}`) };
        // One client downloads the set in one request; a swarm spreads it over its clients.
        if (clients === 1) await swarm.clients[0]!.getFilesFromGateway(request);
        else await swarm.getFilesFromGateway(request);
      },
      close: () => controller.close(),
    };
  });
