/**
 * What every options module shares (runtime/gateway-options.ts,
 * runtime/controller-options.ts): options objects are checked by name (a
 * misspelt or pynetwork-style option such as `gateway_ip` or `download_dir` is
 * refused with what was probably meant, instead of being ignored while a
 * default takes its place), and values by one set of checks whose errors name
 * the owner, the option, what was expected and what came, as p-queue's do.
 */
import type { InspectionEvent, Observer } from "xstate";
import { InvalidArgumentError } from "../protocol/index.js";
import { withTrace } from "./logger.js";

/** An xstate inspection callback (an observer or a function), as `createActor(..., { inspect })` takes. */
export type InspectCallback = Observer<InspectionEvent> | ((event: InspectionEvent) => void);

/** The user's inspect callback, with SWARMNET_TRACE's transition log in front when it is set. */
export function inspectOption(inspect: InspectCallback | undefined): { inspect?: (event: InspectionEvent) => void } {
  const chained = withTrace(inspect);
  return chained ? { inspect: chained } : {};
}

/** pynetwork's argument names and what swarmnet calls them. */
const PYNETWORK_NAMES: Readonly<Record<string, string>> = {
  gateway_ip: "host",
  gateway_port: "port",
  ip: "host",
  address: "host",
  download_dir: "downloadDir",
  max_pool_size: "maxPoolSize",
  pool_size: "maxPoolSize",
  max_handlers: "maxPoolSize",
  timeout: "timeoutMs",
  file_roots: "fileRoots",
  gateways: "gateways",
};

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

const squash = (name: string): string => name.replace(/[_-]/g, "").toLowerCase();

/** The known option a user most likely meant by `name`, if any is close. */
export function suggestOption(name: string, known: readonly string[]): string | undefined {
  const alias = PYNETWORK_NAMES[name];
  if (alias !== undefined && known.includes(alias)) return alias;
  const exact = known.find((k) => squash(k) === squash(name));
  if (exact !== undefined) return exact;
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const k of known) {
    const d = editDistance(squash(name), squash(k));
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

/**
 * Refuses an options argument that is not a plain object, or that names an
 * option `owner` does not have.
 * @throws InvalidArgumentError (SWARMNET_INVALID_ARGUMENT) naming the option and the likely one
 */
export function checkOptionNames(owner: string, options: unknown, known: readonly string[]): void {
  if (options === undefined) return;
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new InvalidArgumentError(
      `${owner} options must be an object, got ${options === null ? "null" : Array.isArray(options) ? "an array" : typeof options}`,
    );
  }
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue;
    const hint = suggestOption(name, known);
    const why = /_/.test(name) ? " (swarmnet's options are camelCase)" : "";
    throw new InvalidArgumentError(
      `${owner} has no option '${name}'${why}${hint !== undefined ? `: did you mean '${hint}'?` : ""} Options: ${known.join(", ")}`,
    );
  }
}

/**
 * `host: "10.0.0.2:1900"` (or `"tcp://10.0.0.2:1900"`) names the port too:
 * split it, unless `port` says otherwise.
 * @throws InvalidArgumentError when the host carries a port and `port` names another
 */
export function splitHostPort(owner: string, host: string, port: number | undefined): { host: string; port: number | undefined } {
  const bare = host.startsWith("tcp://") ? host.slice(6) : host;
  const m = /^(\[[^\]]+\]|[^:\s/[\]]+):(\d{1,5})$/.exec(bare);
  if (m === null) {
    if (bare !== host) return { host: bare, port };
    return { host, port };
  }
  const hostPart = m[1]!.replace(/^\[(.*)\]$/, "$1");
  const portPart = Number(m[2]);
  if (port !== undefined && port !== portPart) {
    throw new InvalidArgumentError(
      `${owner} option 'host' is ${JSON.stringify(host)} (port ${portPart}) but 'port' is ${port}: give the port once`,
    );
  }
  return { host: hostPart, port: portPart };
}

/**
 * An integer option: `fallback` when unset, else `value` if it is an integer in `min..max`.
 * @param owner the class, as users write it ("Gateway", "Controller")
 * @throws InvalidArgumentError (SWARMNET_INVALID_ARGUMENT) "Expected Gateway option `port` to be an integer from 0 to 65535, got 70000"
 */
export function intOption(owner: string, name: string, value: number | undefined, fallback: number, min = 1, max = Infinity): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Infinity ? `>= ${min}` : `from ${min} to ${max}`;
    throw new InvalidArgumentError(`Expected ${owner} option \`${name}\` to be an integer ${range}, got ${describeValue(value)}`);
  }
  return value;
}

/**
 * A string option that may not be empty: `fallback` when unset.
 * @throws InvalidArgumentError (SWARMNET_INVALID_ARGUMENT) "Expected Controller option `host` to be a non-empty string, got \"\""
 */
export function nonEmptyStringOption(owner: string, name: string, value: string | undefined, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== "string" || value.length === 0) {
    throw new InvalidArgumentError(`Expected ${owner} option \`${name}\` to be a non-empty string, got ${describeValue(value)}`);
  }
  return value;
}

/** A value as an error message shows it: strings quoted, the rest as String() gives them, with the type when that hides it. */
function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return `${String(value)} (${typeof value})`;
  if (value === null || value === undefined) return String(value);
  return Array.isArray(value) ? "an array" : typeof value;
}
