/**
 * What every subcommand shares: flag parsing with usage errors, the
 * connection flags, key loading, value printing and the exit codes.
 */
import { accessSync, constants as fsConstants, existsSync, lstatSync, readFileSync, statSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { basename, dirname as parentOf, join, resolve as resolvePath } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import {
  Controller,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_TIMEOUT_MS,
  DataType,
  ErrorCode,
  SwarmnetError,
  fromBytes,
  type Client,
  type ClientCurve,
  type GetClientOptions,
  type NotDelivered,
  type Swarm,
} from "../runtime/index.js";
import { checkRelativePath, describeThrown, kindOfEntry, normalizeEndpoint, normalizeRequestPath } from "../runtime/internal.js";

/** Exit codes of every subcommand (shown in `--help` and the README). */
export const ExitCode = {
  OK: 0,
  /** Anything unexpected (a bug, a local I/O error). */
  FAILED: 1,
  /** Bad usage: unknown flag, missing or malformed argument. */
  USAGE: 2,
  /** The gateway could not be reached (refused, handshake failed, no answer while connecting). */
  UNREACHABLE: 3,
  /** The gateway answered with an error (subroutine threw, not found, pool full, refused path, ...). */
  REMOTE: 4,
  /** Connected, but a request got no answer within its deadline (--timeout): a slow subroutine. */
  DEADLINE: 5,
  /** A transfer delivered some paths and not others (each printed with its reason), as rsync's 23. */
  PARTIAL: 23,
  /** Interrupted by Ctrl-C (SIGINT). */
  INTERRUPTED: 130,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0    ok
  2    bad usage (unknown flag, missing or malformed argument, a local file or folder that cannot be used)
  3    gateway unreachable (connection refused, handshake failed, no answer while connecting)
  4    the gateway answered with an error (remote error, not found, pool full, refused)
  5    connected, but no answer within --timeout (a slow subroutine: raise --timeout)
  23   get/put: some files were not transferred (each is printed with its reason)
  130  interrupted (Ctrl-C)
  1    anything else`;

/** Bad usage: printed with a pointer to `--help`, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/**
 * A path the gateway will be asked for (`--folder`, `--files`) or told
 * (`--dirname`, relative only), checked here as the library would check it
 * before sending: `..`, NUL, empty. A path refused locally is bad usage (exit
 * 2), not an answer from the gateway.
 */
export function requestPath(flag: string, path: string, relativeOnly = false): void {
  try {
    const normalized = normalizeRequestPath(path, flag);
    if (relativeOnly && normalized !== ".") checkRelativePath(normalized, flag);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly help: string;
  run(argv: readonly string[]): Promise<number>;
}

export const CONNECTION_HELP = `Connection:
  -g, --gateway ENDPOINT     gateway as host[:port] or tcp://host:port; port 1857 if left out
                             (default: $SWARMNET_GATEWAY or 127.0.0.1:1857)
      --timeout MS           deadline of each request: a call, a ping, a stream's first
                             item, a file listing (default ${DEFAULT_TIMEOUT_MS})
      --connect-timeout MS   how long to keep trying to reach the gateway (default ${DEFAULT_CONNECT_TIMEOUT_MS})
      --wait MS              when the gateway's pool is full, wait up to MS for a slot
      --curve-public KEY     CURVE: this client's public key (Z85 text or a file holding it)
      --curve-secret KEY     CURVE: this client's secret key (Z85 text or a file holding it)
      --server-key KEY       CURVE: the gateway's public key (Z85 text or a file holding it)`;

export const connectionOptions = {
  gateway: { type: "string", short: "g" },
  timeout: { type: "string" },
  "connect-timeout": { type: "string" },
  wait: { type: "string" },
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

/** An endpoint from the command line: `host`, `host:port` or `tcp://host:port`; the port is 1857 when left out. */
export function endpointFlag(value: string | undefined): string {
  const raw = value ?? process.env["SWARMNET_GATEWAY"] ?? "127.0.0.1:1857";
  const withPort =
    /:\d+$/.test(raw) || /^\[.*\]:\d+$/.test(raw) || raw.includes("://")
      ? raw
      : `${raw.includes(":") && !raw.startsWith("[") ? `[${raw}]` : raw}:1857`;
  try {
    return normalizeEndpoint(withPort);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** What a gateway given as a positional looks like: `tcp://...` or `host:port`. */
const ENDPOINT_LIKE = /^(tcp:\/\/.+|[A-Za-z0-9.-]+:\d{1,5}|\[[0-9A-Fa-f:.]+\]:\d{1,5})$/;

/**
 * The one way every client subcommand takes its gateway: `-g/--gateway`. A
 * subcommand with no other arguments (ping, list, close, inspect) also takes
 * it as its one positional; given both ways, they must agree. Elsewhere a
 * first argument that looks like a gateway is refused with the fix.
 * @throws UsageError
 */
export function gatewayFrom(
  command: string,
  values: { gateway?: string },
  positionals: readonly string[],
  positionalEndpoint: boolean,
): string {
  if (positionalEndpoint) {
    if (positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[1])}`);
    const given = positionals[0];
    if (given !== undefined && values.gateway !== undefined && endpointFlag(given) !== endpointFlag(values.gateway)) {
      throw new UsageError(`the gateway is given twice, differently: ${given} and -g ${values.gateway}; give it once`);
    }
    return endpointFlag(given ?? values.gateway);
  }
  const first = positionals[0];
  if (values.gateway === undefined && first !== undefined && ENDPOINT_LIKE.test(first)) {
    throw new UsageError(`${JSON.stringify(first)} looks like a gateway: give it with -g (swarmnet ${command} -g ${first} ...)`);
  }
  return endpointFlag(values.gateway);
}

/** A folder that exists (or can be made) and can be written, else a usage error (exit 2). */
export function localFolder(flag: string, path: string, mustExist: boolean): string {
  let info: ReturnType<typeof statSync> | undefined;
  try {
    info = statSync(path);
  } catch {
    info = undefined;
  }
  if (info === undefined && mustExist) throw new UsageError(`${flag} ${path}: no such folder`);
  if (info !== undefined && !info.isDirectory()) throw new UsageError(`${flag} ${path}: not a folder`);
  return path;
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
  wait?: string;
  "curve-public"?: string;
  "curve-secret"?: string;
  "server-key"?: string;
};

/**
 * How a subcommand gets its client: `--wait`, and a line on stderr as soon as
 * the first attempt is refused (ZeroMQ keeps retrying until --connect-timeout).
 */
export function clientOptionsFrom(command: string, values: ConnectionValues): GetClientOptions {
  let told = false;
  const waitMs = values.wait === undefined ? undefined : intFlag("wait", values.wait, 0, 0, 600_000);
  return {
    ...(waitMs !== undefined ? { waitMs } : {}),
    onRetry: (error) => {
      if (told) return;
      told = true;
      err(`swarmnet ${command}: ${error.message.replace(/; retried for \d+ ms$/, "")}; retrying until --connect-timeout`);
    },
  };
}

/** A failure while getting a client: the gateway was not reached (exit 3), whatever the code says. */
export class UnreachableError extends Error {
  override readonly name = "UnreachableError";
  constructor(readonly error: SwarmnetError) {
    super(error.message, { cause: error });
  }
}

/**
 * Runs `work` with the command's controller (one gateway, the CLI's connection
 * flags plus `extra`) and closes it afterwards, whatever happens.
 */
export async function withController<T>(
  values: ConnectionValues,
  extra: { endpoint: string; downloadDir?: string; verbose?: boolean },
  work: (controller: Controller) => Promise<T>,
): Promise<T> {
  const controller = controllerFrom(values, extra);
  try {
    return await work(controller);
  } finally {
    await controller.close();
  }
}

/**
 * Runs `work` with a client of the gateway at `endpoint` (one pool slot), closing
 * everything afterwards: what close, ping, call and send share.
 * @throws UnreachableError (exit 3) when the gateway cannot be reached; PoolFullError and the rest as they are
 */
export function withClient<T>(
  command: string,
  values: ConnectionValues,
  endpoint: string,
  work: (client: Client) => Promise<T>,
): Promise<T> {
  return withController(values, { endpoint }, async (controller) => work(await connectClient(command, controller, values)));
}

/** getClient with the CLI's options; a connect timeout or refusal becomes UnreachableError (a full pool stays itself). */
export async function connectClient(command: string, controller: Controller, values: ConnectionValues): Promise<Client> {
  try {
    return await controller.getClient(clientOptionsFrom(command, values));
  } catch (e) {
    throw unreachable(e);
  }
}

function unreachable(e: unknown): unknown {
  if (e instanceof SwarmnetError && (e.code === ErrorCode.TIMEOUT || e.code === ErrorCode.CONNECTION)) return new UnreachableError(e);
  return e;
}

/** A controller for the gateway named by the connection flags; `endpoint` overrides `--gateway`. */
export function controllerFrom(
  values: ConnectionValues,
  extra: { endpoint?: string; downloadDir?: string; verbose?: boolean } = {},
): Controller {
  const endpoint = endpointFlag(extra.endpoint ?? values.gateway);
  const curve = clientCurve(values);
  return new Controller({
    gateways: [endpoint],
    timeoutMs: intFlag("timeout", values.timeout, DEFAULT_TIMEOUT_MS),
    connectTimeoutMs: intFlag("connect-timeout", values["connect-timeout"], DEFAULT_CONNECT_TIMEOUT_MS),
    ...(curve ? { curve } : {}),
    ...(extra.downloadDir !== undefined ? { downloadDir: extra.downloadDir } : {}),
    verbose: extra.verbose ?? false,
  });
}

/** Args given as JSON on the command line. */
/**
 * A subroutine call's words: `NAME [ARG...]` (each ARG JSON, else a string) and
 * `--kwargs JSON`. `before` names positionals between NAME and the ARGs (send's
 * FILE), returned in `extra`.
 * @throws UsageError (exit 2) for a missing NAME or `before` item, or bad JSON in --kwargs
 */
export function subroutineCall(
  positionals: readonly string[],
  kwargsText: string | undefined,
  before: readonly string[] = [],
): { name: string; extra: string[]; args: unknown[]; kwargs: Record<string, unknown> } {
  const [name, ...rest] = positionals;
  if (name === undefined) throw new UsageError("missing subroutine NAME");
  const extra = rest.slice(0, before.length);
  if (extra.length < before.length) throw new UsageError(`missing ${before[extra.length]}`);
  const args = rest.slice(before.length).map((a, i) => jsonArg(`argument ${i + 1}`, a));
  return { name, extra, args, kwargs: kwargsFlag(kwargsText) };
}

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
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new UsageError(`--kwargs must be a JSON object, got ${text}`);
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
  if (error instanceof UnreachableError) return ExitCode.UNREACHABLE;
  if (!(error instanceof SwarmnetError)) return ExitCode.FAILED;
  switch (error.code) {
    case ErrorCode.TIMEOUT:
      return ExitCode.DEADLINE;
    case ErrorCode.CONNECTION:
    case ErrorCode.CONNECTION_REFUSED:
    case ErrorCode.HANDSHAKE_FAILED:
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

/** An error as the CLI prints it: the code, then the message in the CLI's words (flags instead of option names). */
export function describeError(error: unknown): string {
  if (error instanceof UnreachableError) error = error.error;
  if (error instanceof SwarmnetError) {
    const text = error.message
      .replace("(timeoutMs: the time to the first item)", "(--timeout: the time to the first item)")
      .replace(/\(timeoutMs\)/g, "(--timeout)")
      .replace("(idleTimeoutMs)", "(--idle-timeout)")
      .replace(/retried for (\d+) ms/, "retried for $1 ms (--connect-timeout)");
    return `${error.code}: ${text}`;
  }
  return describeThrown(error).message;
}

export const out = (line: string): void => void process.stdout.write(`${line}\n`);
export const err = (line: string): void => void process.stderr.write(`${line}\n`);

/**
 * Calls `handler` when the user types q (a key on a terminal, or a line "q"
 * on a piped stdin); the returned function stops listening and restores the terminal.
 */
export function onQuitKey(handler: () => void): () => void {
  const stdin = process.stdin;
  const raw = stdin.isTTY === true;
  const listener = (chunk: Buffer | string): void => {
    const text = chunk.toString();
    // In raw mode Ctrl-C arrives as a key, not as SIGINT.
    if (/^q\s*$/im.test(text) || (raw && (text.includes("q") || text.includes("\u0003")))) handler();
  };
  if (raw) stdin.setRawMode(true);
  stdin.on("data", listener);
  stdin.resume();
  return () => {
    stdin.off("data", listener);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
  };
}

/** Resolves on the first SIGINT (Ctrl-C); the handler is removed by `dispose`. */
export function onInterrupt(handler: () => void): () => void {
  const listener = (): void => handler();
  process.once("SIGINT", listener);
  return () => void process.off("SIGINT", listener);
}

/**
 * One client, or a swarm of `size`, for a transfer; `via` says which for the
 * summary line. A swarm larger than the free slots uses what it gets and says so on stderr.
 */
export async function transferWorker(
  command: string,
  controller: Controller,
  size: number,
  values: ConnectionValues = {},
): Promise<{ worker: Client | Swarm; via: string }> {
  if (size === 1) return { worker: await connectClient(command, controller, values), via: "1 connection" };
  let swarm: Swarm;
  try {
    swarm = await controller.getSwarm(size, { ...clientOptionsFrom(command, values), min: 1 });
  } catch (e) {
    throw unreachable(e);
  }
  const got = swarm.clients.length;
  if (got < size)
    err(`swarmnet ${command}: asked for a swarm of ${size}, the gateway's pool had ${got} free slot${got === 1 ? "" : "s"}: using ${got}`);
  return { worker: swarm, via: got === 1 ? "a swarm of 1" : `a swarm of ${got}` };
}

/** `--as TYPE`: how to read a bytes result packed pynetwork-style. */
export const AS_TYPES = ["int", "float", "double", "string", "json"] as const;
export type AsType = (typeof AS_TYPES)[number];

export function asFlag(value: string | undefined): AsType | undefined {
  if (value === undefined) return undefined;
  if (!(AS_TYPES as readonly string[]).includes(value))
    throw new UsageError(`--as must be one of ${AS_TYPES.join(", ")}, got ${JSON.stringify(value)}`);
  return value as AsType;
}

/** Reads bytes as `--as` says; a value that is not bytes is shown as it is. */
export function decodeAs(value: unknown, as: AsType | undefined): unknown {
  if (as === undefined || !(value instanceof Uint8Array)) return value;
  try {
    switch (as) {
      case "int":
        return fromBytes(DataType.int, value);
      case "float":
      case "double":
        return fromBytes(DataType.float, value);
      case "string":
        return fromBytes(DataType.string, value);
      case "json":
        return JSON.parse(fromBytes(DataType.string, value)) as unknown;
    }
  } catch (e) {
    throw new SwarmnetError(ErrorCode.BAD_RESULT, `cannot read the ${value.length} bytes received as ${as}: ${(e as Error).message}`);
  }
}

/**
 * A folder this process can write into, or make (its nearest existing parent
 * can be written): else a usage error naming the cause (exit 2), before any
 * connection, not a file error that would read as the gateway's (exit 4).
 */
export function writableFolder(flag: string, path: string): string {
  let probe = resolvePath(path);
  for (;;) {
    const link = (() => {
      try {
        return lstatSync(probe);
      } catch {
        return undefined;
      }
    })();
    if (link !== undefined) {
      let info: ReturnType<typeof statSync>;
      try {
        info = statSync(probe);
      } catch {
        throw new UsageError(`${flag} ${path}: ${probe} is a symlink to nothing`);
      }
      if (!info.isDirectory()) throw new UsageError(`${flag} ${path}: ${probe} is not a folder`);
      try {
        accessSync(probe, fsConstants.W_OK | fsConstants.X_OK);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const why =
          code === "EROFS" ? "read-only file system" : code === "EACCES" || code === "EPERM" ? "permission denied" : (e as Error).message;
        throw new UsageError(
          `${flag} ${path}: ${probe === resolvePath(path) ? "cannot be written" : `cannot be made in ${probe}`}: ${why} (${code ?? "?"}, ${ErrorCode.FILE_ACCESS})`,
        );
      }
      return path;
    }
    const parent = parentOf(probe);
    if (parent === probe) return path;
    probe = parent;
  }
}

export function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}

/**
 * What `put` uploads, grouped by destination folder: a file goes into
 * `dirname`, a folder's files into `dirname/FOLDER/<path below it>` (one group
 * per subfolder, each one request; FOLDER is the folder's own name, also for
 * `.` or `..`). Inside a folder nothing is skipped in silence: what cannot be
 * sent (a FIFO, a socket, a device, a broken symlink, a symlink to a folder
 * (not followed: loops), a name that is not UTF-8, a subfolder that cannot be
 * read) comes back in `problems`, for the report and exit 23. A path given on
 * the command line that is missing or not a file or folder is a usage error
 * (exit 2).
 */
export async function uploadGroups(
  dirname: string,
  paths: readonly string[],
): Promise<{ groups: { dirname: string; files: string[] }[]; total: number; problems: NotDelivered[] }> {
  const groups = new Map<string, string[]>();
  const add = (dir: string, file: string): void => void (groups.get(dir) ?? groups.set(dir, []).get(dir)!).push(file);
  const problems: NotDelivered[] = [];
  let total = 0;
  for (const path of paths) {
    const info = await stat(path).catch(() => undefined);
    if (info === undefined) throw new UsageError(`no such file or folder: ${path}`);
    if (info.isFile()) {
      add(dirname, path);
      total += info.size;
      continue;
    }
    if (!info.isDirectory()) throw new UsageError(`not a regular file or folder: ${path}`);
    const top = basename(resolvePath(path)) || "upload";
    const stack: string[][] = [[]];
    while (stack.length > 0) {
      const below = stack.pop()!;
      const dir = join(path, ...below);
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true, encoding: "buffer" });
      } catch (e) {
        if (below.length === 0) throw new UsageError(`cannot read folder ${path}: ${(e as Error).message}`);
        problems.push(notSent(dir, e));
        continue;
      }
      const files: string[] = [];
      for (const entry of entries) {
        const name = entry.name.toString();
        const file = join(dir, name);
        if (!Buffer.from(name).equals(entry.name)) {
          problems.push({ path: file, code: ErrorCode.PATH_NOT_ALLOWED, reason: "the name is not valid UTF-8 and cannot be sent" });
        } else if (entry.isDirectory()) {
          stack.push([...below, name]);
        } else if (entry.isFile()) {
          files.push(name);
        } else if (entry.isSymbolicLink()) {
          const target = await stat(file).catch((e: unknown) => e as Error);
          if (target instanceof Error) problems.push({ path: file, code: ErrorCode.FILE_NOT_FOUND, reason: "a broken symlink" });
          else if (target.isFile()) files.push(name);
          else
            problems.push({
              path: file,
              code: ErrorCode.FILE_ACCESS,
              reason: `a symlink to ${target.isDirectory() ? "a folder" : "something that is not a regular file"}: not followed`,
            });
        } else {
          problems.push({ path: file, code: ErrorCode.FILE_ACCESS, reason: `${kindOfEntry(entry)}, not a regular file: not sent` });
        }
      }
      for (const name of files.sort()) {
        const file = join(dir, name);
        const entryInfo = await stat(file).catch((e: unknown) => e as Error);
        if (entryInfo instanceof Error) {
          problems.push(notSent(file, entryInfo));
          continue;
        }
        add([dirname, top, ...below].join("/"), file);
        total += entryInfo.size;
      }
    }
  }
  if (groups.size === 0 && problems.length === 0) throw new UsageError(`nothing to upload: no files in ${paths.join(", ")}`);
  return { groups: [...groups].map(([dir, files]) => ({ dirname: dir, files })), total, problems };
}

function notSent(path: string, e: unknown): NotDelivered {
  const code = (e as NodeJS.ErrnoException).code;
  const reason =
    code === "EACCES" || code === "EPERM"
      ? `permission denied (${code})`
      : code === "ENOENT"
        ? "no such file or folder (ENOENT)"
        : (e as Error).message;
  return { path, code: code === "ENOENT" ? ErrorCode.FILE_NOT_FOUND : ErrorCode.FILE_ACCESS, reason };
}
