import { stat } from "node:fs/promises";
import type { FileProgress } from "../runtime/index.js";
import { CONNECTION_HELP, EXIT_CODES_HELP, ExitCode, UsageError, connectionOptions, controllerFrom, intFlag, mib, out, parse, transferWorker, type Command } from "./common.js";

const help = `Usage: swarmnet put --dirname NAME FILE... [options]

Uploads local files into the gateway's download folder, under NAME/ (each
file under its base name). Shows progress bars on a terminal.

Options:
      --dirname NAME         folder inside the gateway's download dir (required)
      --swarm N              spread the files over N connections (default 1)
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
    if (positionals.length === 0) throw new UsageError("no FILE to upload");
    let total = 0;
    for (const file of positionals) {
      const info = await stat(file).catch(() => undefined);
      if (info === undefined) throw new UsageError(`no such file: ${file}`);
      if (!info.isFile()) throw new UsageError(`not a regular file: ${file}`);
      total += info.size;
    }
    const size = intFlag("swarm", values.swarm, 1, 1, 1024);
    const controller = controllerFrom(values, { verbose: values.quiet !== true });
    let bytes = 0;
    const request = {
      dirname: values.dirname,
      files: positionals,
      ...(values.verify ? { verify: true } : {}),
      onProgress: (p: FileProgress) => void (bytes = p.transferred),
    };
    try {
      const t0 = performance.now();
      const { worker, via } = await transferWorker(controller, size);
      const count = await worker.sendFilesToGateway(request);
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
