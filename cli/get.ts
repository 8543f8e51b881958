import { resolve } from "node:path";
import type { GetFilesOptions } from "../runtime/index.js";
import {
  CONNECTION_HELP,
  EXIT_CODES_HELP,
  ExitCode,
  UsageError,
  connectionOptions,
  gatewayFrom,
  intFlag,
  localFolder,
  writableFolder,
  mib,
  out,
  parse,
  requestPath,
  transferWorker,
  type Command,
  withController,
} from "./common.js";
import { IF_EXISTS_HELP, bytesLine, ifExistsFlag, reportedTransfer } from "./transfer-report.js";

const help = `Usage: swarmnet get (--folder DIR [--regex RE] | --files PATH...) [options]

Downloads files from the gateway's file roots into --out (default: the current
folder). A folder download keeps the paths below the folder (empty folders
too); --files lands each file under its base name. Shows progress bars on a
terminal. Ctrl-C stops cleanly and keeps the partial files: the same command
resumes them. Paths that could not be transferred are printed with their
reason (exit 23); the others are still delivered.

Options:
      --folder DIR           a folder under one of the gateway's roots ("." for the root)
      --regex RE             keep files whose path relative to --folder matches RE
      --files PATH...        these files (relative to a root); repeatable, or list them after
  -o, --out DIR              where files land (default .)
      --swarm N              spread the files over N connections (default 1; fewer
                             if the gateway's pool has fewer free slots)
      --verify               check each file's SHA-256 against the gateway's
${IF_EXISTS_HELP}
  -q, --quiet                no progress bars
      --list                 print each downloaded file's local path
${CONNECTION_HELP}
  -h, --help                 this help

Example:
  swarmnet get --folder logs --regex '\\.log$' --swarm 4 --out ./backup

${EXIT_CODES_HELP}`;

const options = {
  ...connectionOptions,
  folder: { type: "string" },
  regex: { type: "string" },
  files: { type: "string", multiple: true },
  out: { type: "string", short: "o" },
  swarm: { type: "string" },
  verify: { type: "boolean" },
  "if-exists": { type: "string" },
  quiet: { type: "boolean", short: "q" },
  list: { type: "boolean" },
} as const;

export const getCommand: Command = {
  name: "get",
  summary: "download files (a folder, a regex, a list) over a swarm",
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, options);
    if (values.help) return (out(help), ExitCode.OK);
    const endpoint = gatewayFrom("get", values, positionals, false);
    const files = [...(values.files ?? []), ...positionals];
    if (values.folder !== undefined && files.length > 0) throw new UsageError("give either --folder or --files, not both");
    if (values.folder === undefined && files.length === 0) throw new UsageError("nothing to get: give --folder DIR or --files PATH...");
    if (values.regex !== undefined && values.folder === undefined) throw new UsageError("--regex filters a --folder");
    if (values.regex !== undefined) {
      try {
        new RegExp(values.regex);
      } catch (e) {
        throw new UsageError(`--regex: ${(e as Error).message}`);
      }
    }
    if (values.folder !== undefined) requestPath("--folder", values.folder);
    for (const file of files) requestPath("--files", file);
    const size = intFlag("swarm", values.swarm, 1, 1, 1024);
    const ifExists = ifExistsFlag(values["if-exists"]);
    const outDir = resolve(writableFolder("--out", localFolder("--out", values.out ?? ".", false)));
    const request: GetFilesOptions = {
      ...(values.folder !== undefined ? { folder: values.folder } : { files }),
      ...(values.regex !== undefined ? { regex: values.regex } : {}),
      ...(values.verify ? { verify: true } : {}),
      ifExists,
    };
    let via = "";
    return withController(values, { endpoint, downloadDir: outDir, verbose: values.quiet !== true }, (controller) =>
      reportedTransfer(
        "downloaded",
        async ({ signal, onReport }) => {
          const w = await transferWorker("get", controller, size, values);
          via = w.via;
          const paths = await w.worker.getFilesFromGateway({ ...request, signal, onReport });
          if (values.list) for (const path of paths) out(path);
        },
        (report, seconds) => {
          const total = report.bytesSent + report.bytesResumed;
          const n = report.delivered.length;
          return (
            `downloaded ${n} file${n === 1 ? "" : "s"} (${mib(total)} MiB; ${bytesLine(report)}) ` +
            `in ${seconds.toFixed(2)} s, ${mib(report.bytesSent / Math.max(seconds, 0.001))} MiB/s over ${via} -> ${outDir}`
          );
        },
      ),
    );
  },
};
