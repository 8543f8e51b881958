/**
 * The Gateway's options in one place: the interface with each default, the
 * list of names, and the one validator the constructor runs before it builds
 * anything. A bad value is refused with InvalidArgumentError
 * (SWARMNET_INVALID_ARGUMENT) naming the option (runtime/options.ts).
 */
import type { HandlerHooks } from "../actors/handler.js";
import type { SubroutineFailure } from "../actors/subroutines.js";
import {
  DEFAULT_DOWNLOAD_DIR,
  DEFAULT_FILE_ROOTS,
  DEFAULT_HOST,
  DEFAULT_LIVENESS_MS,
  DEFAULT_MAX_MESSAGE_SIZE_BYTES,
  DEFAULT_MAX_POOL_SIZE,
  DEFAULT_MAX_RESTARTS,
  DEFAULT_PORT,
  DEFAULT_REGEX_TIMEOUT_MS,
  DEFAULT_RESTART_WINDOW_MS,
  DEFAULT_STOP_GRACE_MS,
  InvalidArgumentError,
} from "../protocol/index.js";
import type { ServerCurve, TransportFactory } from "../transports/transport.js";
import type { MetricsOptions } from "./metrics.js";
import { checkOptionNames, intOption, nonEmptyStringOption, splitHostPort, type InspectCallback } from "./options.js";

export interface GatewayOptions {
  /** TCP port; 0 lets the OS pick one (read `gateway.port` after `start()`). @default 1857 */
  port?: number;
  /** Address to bind; `"host:port"` gives the port too (refused if `port` names another). @default "127.0.0.1" */
  host?: string;
  /** Live handlers at most; a client past it is refused with 503. @default 5 */
  maxPoolSize?: number;
  /** Restarts of one crashed handler allowed within `restartWindowMs`. @default 3 */
  maxRestarts?: number;
  /** The window `maxRestarts` counts in, in ms. @default 10000 */
  restartWindowMs?: number;
  /**
   * The session lease, in ms. Clients heartbeat every third of it; a session silent for the lease plus
   * that heartbeat period (so that any link drop shorter than the lease survives) is ended and its slot
   * freed. @default 15000
   */
  livenessMs?: number;
  /**
   * Largest ZeroMQ frame accepted and sent, in bytes. A larger inbound frame drops that connection
   * (clients learn the limit in the welcome and refuse larger requests themselves); an answer with a
   * frame over it, or over the client's own limit, is not sent: the caller gets MessageTooLargeError
   * and `snapshot().replies.tooLarge` counts it. @default 64 MiB
   */
  maxMessageSize?: number;
  /** How long `stop()` lets calls in flight finish, in ms. @default 5000 */
  stopGraceMs?: number;
  /** Whether a client may close the gateway (`closeGateway()`). @default true */
  allowRemoteClose?: boolean;
  /**
   * Answer admin requests: `admin.snapshot` returns `snapshot()` to any peer that
   * reaches the socket (`swarmnet inspect`, `client.inspectGateway()`), without
   * taking a pool slot. Off, they are refused with SWARMNET_ADMIN_DISABLED. With
   * CURVE only authorized keys get that far. @default false
   */
  admin?: boolean;
  /**
   * Where this process writes the files it receives. On a gateway that is the
   * clients' uploads: `sendFilesToGateway({ dirname })` writes into
   * `downloadDir/dirname`, nowhere else. (A Controller's `downloadDir` is the
   * other end's: where its downloads land. pynetwork's name, kept on both: the
   * folder files are "downloaded" into, seen from the process that writes them.)
   * Relative to the process's cwd. @default "Downloads" (DEFAULT_DOWNLOAD_DIR)
   */
  downloadDir?: string;
  /**
   * Folders downloads may come from (file transfer); a client's path is looked
   * up in each in turn and must stay inside it (symlinks included). @default ["."]
   */
  fileRoots?: string[];
  /** Longest a client's folder regex may run (in a worker thread) before it is refused, in ms. @default 1000 */
  regexTimeoutMs?: number;
  /**
   * CURVE encryption and authentication: the gateway's key pair and the public
   * keys of the clients it lets in (Z85, from `generateKeyPair()`). Others are
   * refused during the handshake and counted in `snapshot().security`.
   */
  curve?: ServerCurve;
  /**
   * Send a throwing subroutine's stack to the client with the error
   * (`RemoteError.remoteStack`). Off, the client gets its message and class
   * name only: a stack tells a caller about the gateway's code and paths. @default false
   */
  remoteStack?: boolean;
  /**
   * Told of every subroutine throw (name, call or stream, client, handler,
   * request id, the error). The default writes one line with the stack to
   * stderr (silenced by SWARMNET_QUIET=1); pass your own to route it to your logger.
   */
  onSubroutineError?: (failure: SubroutineFailure) => void;
  /**
   * Prometheus metrics at `/metrics` on a separate port of 127.0.0.1 (prom-client):
   * pool, sessions, calls by subroutine and outcome, latency, stream and file
   * volume, restarts, auth failures, event-loop lag. `true` picks a free port;
   * read `gateway.metricsUrl` after `start()`. Off, nothing is counted. @default false
   */
  metrics?: boolean | MetricsOptions;
  /**
   * Serve the web inspector for this gateway on 127.0.0.1 (`true`: a free port;
   * read `gateway.webInspectorUrl` after `start()`). It reads the gateway
   * in-process and opens nothing; for another process's gateway use
   * `swarmnet inspect --web` (needs `admin: true` there). @default false
   */
  webInspector?: boolean | { port?: number };
  /** xstate inspection callback, passed to every actor of the gateway. */
  inspect?: InspectCallback;
  /** The wire; ZeroMQ unless a test passes another (`MemoryHub` of `swarmnet/internal`). @default ZeroMQ */
  transport?: TransportFactory;
} /**
 * GatewayOptions plus test-only fault injection. Exported by `swarmnet/internal`
 * only (no stability promise): the Gateway takes `testHooks` at run time, but
 * the user's entry does not offer it.
 */
export interface InternalGatewayOptions extends GatewayOptions {
  /** Test-only fault injection: a throw from a hook crashes the handler; enables `crashHandlerForTest`. */
  testHooks?: HandlerHooks;
}

/** Every option name of InternalGatewayOptions: anything else is refused with a hint (see runtime/options.ts). */
const GATEWAY_OPTIONS = [
  "port",
  "host",
  "maxPoolSize",
  "maxRestarts",
  "restartWindowMs",
  "livenessMs",
  "maxMessageSize",
  "stopGraceMs",
  "allowRemoteClose",
  "admin",
  "downloadDir",
  "fileRoots",
  "regexTimeoutMs",
  "curve",
  "remoteStack",
  "onSubroutineError",
  "metrics",
  "webInspector",
  "inspect",
  "transport",
  "testHooks",
] as const satisfies readonly (keyof InternalGatewayOptions)[];
/** Fails to compile when InternalGatewayOptions gains an option that GATEWAY_OPTIONS does not list. */
const everyGatewayOption: Exclude<keyof InternalGatewayOptions, (typeof GATEWAY_OPTIONS)[number]> extends never ? true : never = true;
void everyGatewayOption;

/** The smallest frame limit (bytes) and session lease (ms) a gateway works with, and the largest TCP port. */
const MIN_MAX_MESSAGE_SIZE_BYTES = 1024;
const MIN_LIVENESS_MS = 50;
const MAX_PORT = 65535;

/** GatewayOptions with every default filled in and every value checked. */
export interface ResolvedGatewayOptions {
  readonly host: string;
  readonly port: number;
  readonly maxPoolSize: number;
  readonly maxRestarts: number;
  readonly restartWindowMs: number;
  readonly livenessMs: number;
  readonly maxMessageSize: number;
  readonly stopGraceMs: number;
  readonly allowRemoteClose: boolean;
  readonly admin: boolean;
  readonly downloadDir: string;
  readonly fileRoots: readonly string[];
  readonly regexTimeoutMs: number;
  readonly curve: ServerCurve | undefined;
  readonly remoteStack: boolean;
  readonly onSubroutineError: ((failure: SubroutineFailure) => void) | undefined;
  /** Set when the `metrics` option is on: the port to serve (0: a free one) and the options as given. */
  readonly metrics: { readonly port: number; readonly options: MetricsOptions } | undefined;
  /** Set when the `webInspector` option is on: the port to serve (0: a free one). */
  readonly webInspectorPort: number | undefined;
  readonly inspect: InspectCallback | undefined;
  readonly transport: TransportFactory | undefined;
  readonly testHooks: HandlerHooks | undefined;
}

/**
 * Checks a Gateway's options and fills in the defaults (pynetwork's `Gateway(1857)`: a number is the port).
 * @throws InvalidArgumentError (SWARMNET_INVALID_ARGUMENT) for an unknown option (with the likely one) or a bad value, naming the option
 */
export function resolveGatewayOptions(given: InternalGatewayOptions | number = {}): ResolvedGatewayOptions {
  const options: InternalGatewayOptions = typeof given === "number" ? { port: given } : given;
  checkOptionNames("Gateway", options, GATEWAY_OPTIONS);
  const split = splitHostPort("Gateway", nonEmptyStringOption("Gateway", "host", options.host, DEFAULT_HOST), options.port);
  const port = intOption("Gateway", "port", split.port, DEFAULT_PORT, 0, MAX_PORT);
  const maxPoolSize = intOption("Gateway", "maxPoolSize", options.maxPoolSize, DEFAULT_MAX_POOL_SIZE);
  const maxMessageSize = intOption(
    "Gateway",
    "maxMessageSize",
    options.maxMessageSize,
    DEFAULT_MAX_MESSAGE_SIZE_BYTES,
    MIN_MAX_MESSAGE_SIZE_BYTES,
  );
  if (options.curve) {
    const { publicKey, secretKey, authorizedKeys } = options.curve;
    if (typeof publicKey !== "string" || typeof secretKey !== "string" || publicKey.length !== 40 || secretKey.length !== 40) {
      throw new InvalidArgumentError("Expected Gateway option `curve` to have publicKey and secretKey as 40-character Z85 strings");
    }
    if (!Array.isArray(authorizedKeys) || authorizedKeys.some((k) => typeof k !== "string" || k.length !== 40)) {
      throw new InvalidArgumentError("Expected Gateway option `curve.authorizedKeys` to be an array of 40-character Z85 public keys");
    }
  }
  const metricsOptions =
    options.metrics === undefined || options.metrics === false ? undefined : options.metrics === true ? {} : options.metrics;
  const web =
    options.webInspector === undefined || options.webInspector === false
      ? undefined
      : options.webInspector === true
        ? {}
        : options.webInspector;
  return {
    host: split.host,
    port,
    maxPoolSize,
    maxRestarts: intOption("Gateway", "maxRestarts", options.maxRestarts, DEFAULT_MAX_RESTARTS, 0),
    restartWindowMs: intOption("Gateway", "restartWindowMs", options.restartWindowMs, DEFAULT_RESTART_WINDOW_MS),
    livenessMs: intOption("Gateway", "livenessMs", options.livenessMs, DEFAULT_LIVENESS_MS, MIN_LIVENESS_MS),
    maxMessageSize,
    stopGraceMs: intOption("Gateway", "stopGraceMs", options.stopGraceMs, DEFAULT_STOP_GRACE_MS, 0),
    allowRemoteClose: options.allowRemoteClose ?? true,
    admin: options.admin === true,
    downloadDir: options.downloadDir ?? DEFAULT_DOWNLOAD_DIR,
    fileRoots: options.fileRoots ?? DEFAULT_FILE_ROOTS,
    regexTimeoutMs: intOption("Gateway", "regexTimeoutMs", options.regexTimeoutMs, DEFAULT_REGEX_TIMEOUT_MS),
    curve: options.curve,
    remoteStack: options.remoteStack === true,
    onSubroutineError: options.onSubroutineError,
    metrics: metricsOptions && { port: intOption("Gateway", "metrics.port", metricsOptions.port, 0, 0, MAX_PORT), options: metricsOptions },
    webInspectorPort: web && intOption("Gateway", "webInspector.port", web.port, 0, 0, MAX_PORT),
    inspect: options.inspect,
    transport: options.transport,
    testHooks: options.testHooks,
  };
}
