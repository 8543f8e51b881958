import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import type { FileProgress, GetFilesOptions } from "../runtime/index.js";
import {
  CONNECTION_HELP,
  EXIT_CODES_HELP,
  ExitCode,
  UsageError,
  connectionOptions,
  controllerFrom,
  gatewayFrom,
  intFlag,
  localFolder,
  mib,
  out,
  parse,
  transferWorker,
  type Command,
} from "./common.js";

const help = `Usage: swarmnet get (--folder DIR [--regex RE] | --files PATH...) [options]

Downloads files from the gateway's file roots into --out (default: the current
folder). A folder download keeps the paths below the folder; --files lands
each file under its base name. Shows progress bars on a terminal.

Options:
      --folder DIR           a folder under one of the gateway's roots ("." for the root)
      --regex RE             keep files whose path relative to --folder matches RE
      --files PATH...        these files (relative to a root); repeatable, or list them after
  -o, --out DIR              where files land (default .)
      --swarm N              spread the files over N connections (default 1; fewer
                             if the gateway's pool has fewer free slots)
      --verify               check each file's SHA-256 against the gateway's
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
  quiet: { type: "boolean", short: "q" },
  list: { type: "boolean" },
} as const;

export const getCommand: Command = {
  name: "get",
  summary: "download files (a folder, a regex, a list) over a swarm",
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, options);
    if (values.help) return out(help), ExitCode.OK;
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
    const size = intFlag("swarm", values.swarm, 1, 1, 1024);
    const outDir = resolve(localFolder("--out", values.out ?? ".", false));
    const controller = controllerFrom(values, { endpoint, downloadDir: outDir, verbose: values.quiet !== true });
    let bytes = 0;
    const request: GetFilesOptions = {
      ...(values.folder !== undefined ? { folder: values.folder } : { files }),
      ...(values.regex !== undefined ? { regex: values.regex } : {}),
      ...(values.verify ? { verify: true } : {}),
      onProgress: (p: FileProgress) => void (bytes = p.transferred),
    };
    try {
      const t0 = performance.now();
      const { worker, via } = await transferWorker("get", controller, size, values);
      const paths = await worker.getFilesFromGateway(request);
      const seconds = (performance.now() - t0) / 1000;
      if (values.list) for (const path of paths) out(path);
      let total = 0;
      for (const path of paths) total += (await stat(path)).size;
      out(
        `downloaded ${paths.length} file${paths.length === 1 ? "" : "s"} (${mib(total)} MiB, ${mib(bytes)} MiB transferred) ` +
          `in ${seconds.toFixed(2)} s, ${mib(bytes / Math.max(seconds, 0.001))} MiB/s over ${via} -> ${outDir}`,
      );
      return ExitCode.OK;
    } finally {
      await controller.close();
    }
  },
};
