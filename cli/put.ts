import type { FileProgress } from "../runtime/index.js";
import {
  CONNECTION_HELP,
  EXIT_CODES_HELP,
  ExitCode,
  UsageError,
  connectionOptions,
  controllerFrom,
  gatewayFrom,
  intFlag,
  mib,
  out,
  parse,
  transferWorker,
  uploadGroups,
  type Command,
} from "./common.js";

const help = `Usage: swarmnet put --dirname NAME FILE|FOLDER... [options]

Uploads local files into the gateway's download folder, under NAME/ (each
file under its base name; a FOLDER's files keep their paths below it, under
NAME/FOLDER/). Shows progress bars on a terminal.

Options:
      --dirname NAME         folder inside the gateway's download dir (required)
      --swarm N              spread the files over N connections (default 1; fewer
                             if the gateway's pool has fewer free slots)
      --verify               the gateway checks each file's SHA-256
  -q, --quiet                no progress bars
${CONNECTION_HELP}
  -h, --help                 this help

Example:
  swarmnet put --dirname backup ./reports/*.pdf --swarm 4

${EXIT_CODES_HELP}`;

const options = {
  ...connectionOptions,
  dirname: { type: "string" },
  swarm: { type: "string" },
  verify: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
} as const;

export const putCommand: Command = {
  name: "put",
  summary: "upload files into the gateway's download folder",
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, options);
    if (values.help) return out(help), ExitCode.OK;
    if (values.dirname === undefined) throw new UsageError("missing --dirname NAME");
    const endpoint = gatewayFrom("put", values, positionals, false);
    if (positionals.length === 0) throw new UsageError("no FILE to upload");
    const { groups, total } = await uploadGroups(values.dirname, positionals);
    const size = intFlag("swarm", values.swarm, 1, 1, 1024);
    const controller = controllerFrom(values, { endpoint, verbose: values.quiet !== true });
    let bytes = 0;
    let before = 0;
    try {
      const t0 = performance.now();
      const { worker, via } = await transferWorker("put", controller, size, values);
      let count = 0;
      // One request per destination folder: a folder's files keep their layout.
      for (const { dirname, files } of groups) {
        count += await worker.sendFilesToGateway({
          dirname,
          files,
          ...(values.verify ? { verify: true } : {}),
          onProgress: (p: FileProgress) => void (bytes = before + p.transferred),
        });
        before = bytes;
      }
      const seconds = (performance.now() - t0) / 1000;
      out(
        `uploaded ${count} file${count === 1 ? "" : "s"} (${mib(total)} MiB) to ${values.dirname}/ ` +
          `in ${seconds.toFixed(2)} s, ${mib(bytes / Math.max(seconds, 0.001))} MiB/s over ${via}`,
      );
      return ExitCode.OK;
    } finally {
      await controller.close();
    }
  },
};
