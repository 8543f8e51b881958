/**
 * One small logger, silent by default. `SWARMNET_TRACE=gateway,supervisor`
 * (or `*`) turns on tracing per module; warnings go to stderr unless
 * `SWARMNET_QUIET=1`.
 */
const traced = new Set((process.env["SWARMNET_TRACE"] ?? "").split(",").map((s) => s.trim()).filter(Boolean));

export function trace(module: string, message: string): void {
  if (traced.has(module) || traced.has("*")) process.stderr.write(`[swarmnet:${module}] ${message}\n`);
}

export function warn(message: string): void {
  if (process.env["SWARMNET_QUIET"] !== "1") process.stderr.write(`swarmnet warning: ${message}\n`);
}
