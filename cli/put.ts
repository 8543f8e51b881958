import { FilesNotDeliveredError, type TransferReport } from "../runtime/index.js";
import {
  CONNECTION_HELP,
  EXIT_CODES_HELP,
  ExitCode,
  UsageError,
  connectionOptions,
  gatewayFrom,
  intFlag,
  mib,
  out,
  parse,
  requestPath,
  transferWorker,
  uploadGroups,
  type Command,
  withController,
} from "./common.js";
import { IF_EXISTS_HELP, bytesLine, ifExistsFlag, reportedTransfer } from "./transfer-report.js";

const help = `Usage: swarmnet put --dirname NAME FILE|FOLDER... [options]

Uploads local files into the gateway's download folder, under NAME/ (each
file under its base name; a FOLDER's files keep their paths below it, under
NAME/FOLDER/; a swarm splits large files into byte ranges). What a FOLDER
holds that cannot be sent (a FIFO, a broken symlink, a symlink to a folder,
a name that is not UTF-8, ...) is reported, never skipped. Shows progress
bars on a terminal. Ctrl-C stops cleanly; the gateway keeps the partial files
and the same command resumes them. Files that could not be transferred are
printed with their reason (exit 23).

Options:
      --dirname NAME         folder inside the gateway's download dir (required)
      --swarm N              spread the files over N connections (default 1; fewer
                             if the gateway's pool has fewer free slots)
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
    if (values.help) return (out(help), ExitCode.OK);
    if (values.dirname === undefined) throw new UsageError("missing --dirname NAME");
    requestPath("--dirname", values.dirname, true);
    const endpoint = gatewayFrom("put", values, positionals, false);
    if (positionals.length === 0) throw new UsageError("no FILE to upload");
    const { groups, total, problems } = await uploadGroups(values.dirname, positionals);
    const size = intFlag("swarm", values.swarm, 1, 1, 1024);
    const ifExists = ifExistsFlag(values["if-exists"]);
    const dirname = values.dirname;
    let via = "";
    return withController(values, { endpoint, verbose: values.quiet !== true }, (controller) =>
      reportedTransfer(
        "uploaded",
        async ({ signal, onReport }) => {
          const w = await transferWorker("put", controller, size, values);
          via = w.via;
          // One request per destination folder (a folder's files keep their
          // layout); the reports add up, and one group's missing paths do not
          // stop the next group.
          // What could not even be offered (a FIFO, a broken symlink, ... inside a folder) is reported too.
          let done: TransferReport = {
            delivered: [],
            skipped: [],
            notDelivered: [...problems],
            folders: [],
            bytesSent: 0,
            bytesResumed: 0,
          };
          if (groups.length === 0) onReport(done);
          const sum = (r: TransferReport): TransferReport => ({
            delivered: [...done.delivered, ...r.delivered],
            skipped: [...done.skipped, ...r.skipped],
            notDelivered: [...done.notDelivered, ...r.notDelivered],
            folders: [...done.folders, ...r.folders],
            bytesSent: done.bytesSent + r.bytesSent,
            bytesResumed: done.bytesResumed + r.bytesResumed,
          });
          for (const group of groups) {
            let last: TransferReport | undefined;
            const report = (r: TransferReport): void => {
              last = r;
              onReport(sum(r));
            };
            try {
              await w.worker.sendFilesToGateway({
                ...group,
                ...(values.verify ? { verify: true } : {}),
                ifExists,
                signal,
                onReport: report,
              });
            } catch (e) {
              if (!(e instanceof FilesNotDeliveredError)) throw e;
              last = e.report;
            }
            if (last !== undefined) done = sum(last);
          }
          if (done.notDelivered.length > 0) throw new FilesNotDeliveredError(done);
        },
        (report, seconds) => {
          const n = report.delivered.length;
          return (
            `uploaded ${n} file${n === 1 ? "" : "s"} (${mib(total)} MiB; ${bytesLine(report)}) to ${dirname}/ ` +
            `in ${seconds.toFixed(2)} s, ${mib(report.bytesSent / Math.max(seconds, 0.001))} MiB/s over ${via}`
          );
        },
      ),
    );
  },
};
