/**
 * What every subcommand shares: flag parsing with usage errors, the
 * connection flags, key loading, value printing and the exit codes.
 */
import { existsSync, readFileSync } from "node:fs";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { Controller, ErrorCode, SwarmnetError, describeThrown, normalizeEndpoint, type Client, type ClientCurve, type Swarm } from "../runtime/index.js";

/** Exit codes of every subcommand (shown in `--help` and the README). */
export const ExitCode = {
  OK: 0,
  /** Anything unexpected (a bug, a local I/O error). */
  FAILED: 1,
  /** Bad usage: unknown flag, missing or malformed argument. */
  USAGE: 2,
  /** The gateway could not be reached or did not answer in time. */
  UNREACHABLE: 3,
  /** The gateway answered with an error (subroutine threw, not found, pool full, refused path, ...). */
  REMOTE: 4,
  /** A transfer delivered some paths and not others (each printed with its reason), as rsync's 23. */
  PARTIAL: 23,
  /** Interrupted by Ctrl-C (SIGINT). */
  INTERRUPTED: 130,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0    ok
  2    bad usage (unknown flag, missing or malformed argument)
  3    gateway unreachable or no answer in time
  4    the gateway answered with an error (remote error, not found, pool full, refused)
  23   get/put: some files were not transferred (each is printed with its reason)
  130  interrupted (Ctrl-C)
  1    anything else`;

/** Bad usage: printed with a pointer to `--help`, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly help: string;
  run(argv: readonly string[]): Promise<number>;
}

export const CONNECTION_HELP = `Connection:
  -g, --gateway ENDPOINT     gateway as host:port or tcp://host:port
                             (default: $SWARMNET_GATEWAY or 127.0.0.1:1857)
      --timeout MS           deadline of each call (default 10000)
      --connect-timeout MS   how long to wait for the gateway (default 5000)
      --curve-public KEY     CURVE: this client's public key (Z85 text or a file holding it)
      --curve-secret KEY     CURVE: this client's secret key (Z85 text or a file holding it)
      --server-key KEY       CURVE: the gateway's public key (Z85 text or a file holding it)`;

export const connectionOptions = {
  gateway: { type: "string", short: "g" },
  timeout: { type: "string" },
  "connect-timeout": { type: "string" },
  "curve-public": { type: "string" },
  "curve-secret": { type: "string" },
  "server-key": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

/** `parseArgs` (strict, positionals allowed) with its errors turned into UsageError. */
export function parse<O extends NonNullable<ParseArgsConfig["options"]>>(
  argv: readonly string[],
  options: O,
): ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>> {
  return usage(() => parseArgs({ args: [...argv], options, allowPositionals: true, strict: true }));
}

function usage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function intFlag(name: string, value: string | undefined, fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer in ${min}..${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

export function endpointFlag(value: string | undefined): string {
  const raw = value ?? process.env["SWARMNET_GATEWAY"] ?? "127.0.0.1:1857";
  try {
    return normalizeEndpoint(raw);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A Z85 key given as its 40 characters or as a file holding it (first non-comment line). */
export function readKey(flag: string, value: string): string {
  if (/^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/.test(value) && !existsSync(value)) return value;
  let text: string;
  try {
    text = readFileSync(value, "utf8");
  } catch {
    throw new UsageError(`--${flag} must be a 40-character Z85 key or a readable file, got ${JSON.stringify(value)}`);
  }
  const key = keysIn(text)[0];
  if (key === undefined) throw new UsageError(`--${flag}: no 40-character Z85 key in ${value}`);
  return key;
}

/** Keys in a key file: one per line; a line starting with "# " is a comment (Z85 has "#" but no space). */
export function keysIn(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !/^#(\s|$)/.test(line))
    .map((line) => {
      if (line.length !== 40) throw new UsageError(`not a 40-character Z85 key: ${JSON.stringify(line.slice(0, 60))}`);
      return line;
    });
}

export function clientCurve(values: { "curve-public"?: string; "curve-secret"?: string; "server-key"?: string }): ClientCurve | undefined {
  const given = [values["curve-public"], values["curve-secret"], values["server-key"]].filter((v) => v !== undefined).length;
  if (given === 0) return undefined;
  if (given !== 3) throw new UsageError("CURVE needs all three of --curve-public, --curve-secret and --server-key");
  return {
    publicKey: readKey("curve-public", values["curve-public"]!),
    secretKey: readKey("curve-secret", values["curve-secret"]!),
    serverPublicKey: readKey("server-key", values["server-key"]!),
  };
}

type ConnectionValues = {
  gateway?: string;
  timeout?: string;
  "connect-timeout"?: string;
  "curve-public"?: string;
  "curve-secret"?: string;
  "server-key"?: string;
};

/** A controller for the gateway named by the connection flags; `endpoint` overrides `--gateway`. */
export function controllerFrom(values: ConnectionValues, extra: { endpoint?: string; downloadDir?: string; verbose?: boolean } = {}): Controller {
  const endpoint = endpointFlag(extra.endpoint ?? values.gateway);
  const curve = clientCurve(values);
  return new Controller({
    gateways: [endpoint],
    timeoutMs: intFlag("timeout", values.timeout, 10_000),
    connectTimeoutMs: intFlag("connect-timeout", values["connect-timeout"], 5_000),
    ...(curve ? { curve } : {}),
    ...(extra.downloadDir !== undefined ? { downloadDir: extra.downloadDir } : {}),
    verbose: extra.verbose ?? false,
  });
}

/** Args given as JSON on the command line. */
export function jsonArg(what: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${what} must be JSON (quote strings: '"text"'), got ${JSON.stringify(text)}`);
  }
}

export function kwargsFlag(text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  const value = jsonArg("--kwargs", text);
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new UsageError(`--kwargs must be a JSON object, got ${text}`);
  return value as Record<string, unknown>;
}

function isPrintableUtf8(bytes: Uint8Array): string | undefined {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
  // Control characters other than tab and newlines would garble a terminal.
  return /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text) ? undefined : text;
}

/** A value JSON can show: bytes as `{bytes: "<hex>"}` (before Buffer's own toJSON gets to them), bigints as strings. */
function plain(value: unknown, depth = 0): unknown {
  if (depth > 64) return "...";
  if (value instanceof Uint8Array) return { bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex") };
  if (typeof value === "bigint") return value.toString();
  if (value === undefined) return null;
  if (Array.isArray(value)) return value.map((v) => plain(v, depth + 1));
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), plain(v, depth + 1)]));
  if (value instanceof Set) return [...value].map((v) => plain(v, depth + 1));
  if (value !== null && typeof value === "object" && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v, depth + 1)]));
  }
  return value;
}

export function toJson(value: unknown): string {
  return JSON.stringify(plain(value)) ?? "null";
}

/**
 * How a result is shown: bytes as text when they are printable UTF-8, else as
 * hex; a string as it is; any other value as JSON (nested bytes as `{"bytes": "<hex>"}`).
 */
export function formatValue(value: unknown): string {
  if (value instanceof Uint8Array) return isPrintableUtf8(value) ?? Buffer.from(value).toString("hex");
  if (typeof value === "string") return value;
  return toJson(value);
}

/** Exit code for an error thrown by a subcommand. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError) return ExitCode.USAGE;
  if (!(error instanceof SwarmnetError)) return ExitCode.FAILED;
  switch (error.code) {
    case ErrorCode.TIMEOUT:
    case ErrorCode.CONNECTION:
      return ExitCode.UNREACHABLE;
    case ErrorCode.INVALID_ARGUMENT:
      return ExitCode.USAGE;
    case ErrorCode.ABORTED:
      return ExitCode.INTERRUPTED;
    case ErrorCode.FILES_NOT_DELIVERED:
      return ExitCode.PARTIAL;
    case ErrorCode.CLOSED:
      return ExitCode.FAILED;
    default:
      return ExitCode.REMOTE;
  }
}

export function describeError(error: unknown): string {
  if (error instanceof SwarmnetError) return `${error.code}: ${error.message}`;
  return describeThrown(error).message;
}

export const out = (line: string): void => void process.stdout.write(`${line}\n`);
export const err = (line: string): void => void process.stderr.write(`${line}\n`);

/** Resolves on the first SIGINT (Ctrl-C); the handler is removed by `dispose`. */
export function onInterrupt(handler: () => void): () => void {
  const listener = (): void => handler();
  process.once("SIGINT", listener);
  return () => void process.off("SIGINT", listener);
}

/** One client, or a swarm of `size`, for a transfer; `via` says which for the summary line. */
export async function transferWorker(controller: Controller, size: number): Promise<{ worker: Client | Swarm; via: string }> {
  if (size === 1) return { worker: await controller.getClient(), via: "1 connection" };
  return { worker: await controller.getSwarm(size), via: `a swarm of ${size}` };
}

export function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}
