/**
 * Options objects are checked by name: a misspelt or pynetwork-style option
 * (`gateway_ip`, `download_dir`) is refused with what was probably meant,
 * instead of being ignored while a default takes its place.
 */
import { InvalidArgumentError } from "../protocol/index.js";

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
    throw new InvalidArgumentError(`${owner} options must be an object, got ${options === null ? "null" : Array.isArray(options) ? "an array" : typeof options}`);
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
    throw new InvalidArgumentError(`${owner} option 'host' is ${JSON.stringify(host)} (port ${portPart}) but 'port' is ${port}: give the port once`);
  }
  return { host: hostPart, port: portPart };
}
