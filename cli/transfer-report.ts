/**
 * What `swarmnet get` and `swarmnet put` share around a transfer: the
 * `--if-exists` flag, Ctrl-C as a clean stop (the `.part` files and their
 * journals stay, the same command resumes), and the summary with every path
 * not delivered and its reason.
 */
import { AbortedError, FilesNotDeliveredError, type IfExists, type TransferReport } from "../runtime/index.js";
import { ExitCode, UsageError, err, mib, onInterrupt, out } from "./common.js";

const IF_EXISTS: readonly IfExists[] = ["overwrite", "skip", "rename", "error"];

export const IF_EXISTS_HELP = `      --if-exists MODE       a target that exists: overwrite (default), skip, rename
                             (NAME (1).ext) or error (reported, exit 23)`;

/** `--if-exists MODE`, checked. */
export function ifExistsFlag(value: string | undefined): IfExists {
  if (value === undefined) return "overwrite";
  if (!(IF_EXISTS as readonly string[]).includes(value))
    throw new UsageError(`--if-exists must be one of ${IF_EXISTS.join(", ")}, got ${JSON.stringify(value)}`);
  return value as IfExists;
}

/**
 * Runs `transfer` with a signal that Ctrl-C aborts and a report sink, prints
 * the summary (`verb`, what was delivered, skipped, sent and resumed) and
 * every path not delivered, and returns the exit code: 0, 23 (some not
 * delivered) or 130 (interrupted).
 */
export async function reportedTransfer(
  verb: string,
  transfer: (options: { signal: AbortSignal; onReport: (report: TransferReport) => void }) => Promise<unknown>,
  describe: (report: TransferReport, seconds: number) => string,
): Promise<number> {
  const interrupt = new AbortController();
  const dispose = onInterrupt(() => interrupt.abort(new AbortedError("interrupted (Ctrl-C)")));
  let report: TransferReport | undefined;
  const t0 = performance.now();
  try {
    await transfer({ signal: interrupt.signal, onReport: (r) => void (report = r) });
  } catch (error) {
    if (interrupt.signal.aborted) {
      err(
        `interrupted: ${report ? `${mib(report.bytesSent)} MiB sent; ` : ""}partial files are kept, run the same command again to resume`,
      );
      return ExitCode.INTERRUPTED;
    }
    if (!(error instanceof FilesNotDeliveredError)) throw error;
    report = error.report;
  } finally {
    dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  const r = report!;
  out(describe(r, seconds));
  if (r.skipped.length > 0) out(`skipped ${r.skipped.length} existing file${r.skipped.length === 1 ? "" : "s"} (--if-exists skip)`);
  if (r.notDelivered.length === 0) return ExitCode.OK;
  for (const n of r.notDelivered) err(`not ${verb}: ${JSON.stringify(n.path)}: ${n.reason} (${n.code})`);
  err(`swarmnet: some files could not be transferred (${r.notDelivered.length} of ${r.notDelivered.length + r.delivered.length})`);
  return ExitCode.PARTIAL;
}

/** "12.0 MiB sent, 4.0 MiB resumed" (the second part only when something was resumed). */
export function bytesLine(report: TransferReport): string {
  return `${mib(report.bytesSent)} MiB sent${report.bytesResumed > 0 ? `, ${mib(report.bytesResumed)} MiB resumed` : ""}`;
}
