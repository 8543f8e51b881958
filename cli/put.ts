import { stat } from "node:fs/promises";
import { CONNECTION_HELP, EXIT_CODES_HELP, ExitCode, UsageError, connectionOptions, controllerFrom, intFlag, mib, out, parse, transferWorker, type Command } from "./common.js";
import { IF_EXISTS_HELP, bytesLine, ifExistsFlag, reportedTransfer } from "./transfer-report.js";

const help = `Usage: swarmnet put --dirname NAME FILE... [options]

Uploads local files into the gateway's download folder, under NAME/ (each
file under its base name; a swarm splits large files into byte ranges).
Shows progress bars on a terminal. Ctrl-C stops cleanly; the gateway keeps
the partial files and the same command resumes them. Files that could not be
transferred are printed with their reason (exit 23).

Options:
      --dirname NAME         folder inside the gateway's download dir (required)
      --swarm N              spread the files over N connections (default 1)
      --verify               the gateway checks each file's SHA-256
${IF_EXISTS_HELP}
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
  "if-exists": { type: "string" },
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
    const ifExists = ifExistsFlag(values["if-exists"]);
    const controller = controllerFrom(values, { verbose: values.quiet !== true });
    const dirname = values.dirname;
    let via = "";
    try {
      return await reportedTransfer(
        "uploaded",
        async ({ signal, onReport }) => {
          const w = await transferWorker(controller, size);
          via = w.via;
          await w.worker.sendFilesToGateway({ dirname, files: positionals, ...(values.verify ? { verify: true } : {}), ifExists, signal, onReport });
        },
        (report, seconds) => {
          const n = report.delivered.length;
          return (
            `uploaded ${n} file${n === 1 ? "" : "s"} (${mib(total)} MiB; ${bytesLine(report)}) to ${dirname}/ ` +
            `in ${seconds.toFixed(2)} s, ${mib(report.bytesSent / Math.max(seconds, 0.001))} MiB/s over ${via}`
          );
        },
      );
    } finally {
      await controller.close();
    }
  },
};
