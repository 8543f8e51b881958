/**
 * The Controller's options in one place: the interfaces of the constructor's
 * and of getClient / getSwarm / listSubroutines with each default, the list of
 * names, and the one validator the constructor runs before it builds anything.
 * A bad value is refused with InvalidArgumentError (SWARMNET_INVALID_ARGUMENT)
 * naming the option (runtime/options.ts).
 */
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_DOWNLOAD_DIR,
  DEFAULT_HOST,
  DEFAULT_MAX_MESSAGE_SIZE_BYTES,
  DEFAULT_PORT,
  DEFAULT_TIMEOUT_MS,
  InvalidArgumentError,
  type SwarmnetError,
} from "../protocol/index.js";
import type { ClientCurve, TransportFactory } from "../transports/transport.js";
import { endpointOf, normalizeEndpoint } from "./endpoint.js";
import { checkOptionNames, intOption, nonEmptyStringOption, splitHostPort, type InspectCallback } from "./options.js";

export interface ControllerOptions {
  /**
   * Gateway host, when `gateways` is not given; `"host:port"` gives the port
   * too (refused if `port` names another). @default "127.0.0.1"
   */
  host?: string;
  /** Gateway port, when `gateways` is not given. @default 1857 */
  port?: number;
  /** Several gateways (`tcp://host:port` or `host:port`); clients and swarms spread over them. */
  gateways?: readonly string[];
  /**
   * Where this process writes the files it receives: `getFilesFromGateway()`'s
   * downloads land here (unless the call gives its own `downloadDir`). (A
   * Gateway's `downloadDir` is where the clients' uploads land: the same
   * meaning, seen from the receiving process.) Relative to the process's cwd.
   * @default "Downloads" (DEFAULT_DOWNLOAD_DIR)
   */
  downloadDir?: string;
  /** Progress bars on stderr for transfers. @default false */
  verbose?: boolean;
  /**
   * Deadline of each call in ms, unless the call says otherwise, counted from when the call is made
   * (queue time included); any positive integer, 2^31 ms and beyond too. @default 10000
   */
  timeoutMs?: number;
  /** How long getClient() waits for a gateway's answer, per gateway tried, in ms. @default 5000 */
  connectTimeoutMs?: number;
  /**
   * Largest ZeroMQ frame accepted, in bytes; told to the gateway, which refuses larger answers. A
   * request with a frame over this or over the gateway's limit fails with MessageTooLargeError
   * (SWARMNET_MESSAGE_TOO_LARGE) before it is sent, and the client stays usable. @default 64 MiB
   */
  maxMessageSize?: number;
  /** CURVE: this controller's key pair and the gateway's public key (Z85). Needed for a gateway with CURVE on. */
  curve?: ClientCurve;
  /** xstate inspection callback, passed to the controller and every client actor. */
  inspect?: InspectCallback;
  /** The wire; ZeroMQ unless a test passes another (`MemoryHub` of `swarmnet/internal`). @default ZeroMQ */
  transport?: TransportFactory;
}

export interface GetClientOptions {
  /** Use this gateway only, instead of trying the controller's gateways in turn. */
  endpoint?: string;
  /** @default the controller's connectTimeoutMs */
  connectTimeoutMs?: number;
  /**
   * When the pool is full, wait up to this long (ms) in the gateway's fair
   * queue for a slot. Without it a full pool fails at once with PoolFullError.
   */
  waitMs?: number;
  /**
   * Called as soon as a connection attempt fails while connecting (nothing
   * listens: ConnectionRefusedError); ZeroMQ keeps retrying until the connect
   * deadline, when getClient() rejects with that error.
   */
  onRetry?: (error: SwarmnetError) => void;
}

export interface GetSwarmOptions extends GetClientOptions {
  /**
   * Accept a smaller swarm when the pools cannot give `n` clients: at least
   * this many (the rest are refused as pool full). Without it getSwarm is all
   * or nothing. @default n
   */
  min?: number;
}

/** Options of `controller.listSubroutines()`. */
export interface ListSubroutinesOptions {
  /** Ask this gateway. @default the controller's first gateway */
  endpoint?: string;
  /** How long to wait for the answer, in ms (connecting included). @default the controller's connectTimeoutMs */
  timeoutMs?: number;
}

/** Every option name of ControllerOptions: anything else is refused with a hint (see runtime/options.ts). */
const CONTROLLER_OPTIONS = [
  "host",
  "port",
  "gateways",
  "downloadDir",
  "verbose",
  "timeoutMs",
  "connectTimeoutMs",
  "maxMessageSize",
  "curve",
  "inspect",
  "transport",
] as const satisfies readonly (keyof ControllerOptions)[];
/** Fails to compile when ControllerOptions gains an option that CONTROLLER_OPTIONS does not list. */
const everyControllerOption: Exclude<keyof ControllerOptions, (typeof CONTROLLER_OPTIONS)[number]> extends never ? true : never = true;
void everyControllerOption;

/** ControllerOptions with every default filled in and every value checked. */
export interface ResolvedControllerOptions {
  /** The gateways to try, as `tcp://host:port`. */
  readonly endpoints: readonly string[];
  readonly downloadDir: string;
  readonly verbose: boolean;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly maxMessageSize: number;
  readonly curve: ClientCurve | undefined;
  readonly inspect: InspectCallback | undefined;
  readonly transport: TransportFactory | undefined;
}

/**
 * Checks a Controller's options and fills in the defaults (a number is the gateway's port on 127.0.0.1).
 * @throws InvalidArgumentError (SWARMNET_INVALID_ARGUMENT) for an unknown option (with the likely one) or a bad value, naming the option
 */
export function resolveControllerOptions(given: ControllerOptions | number = {}): ResolvedControllerOptions {
  const options: ControllerOptions = typeof given === "number" ? { port: given } : given;
  checkOptionNames("Controller", options, CONTROLLER_OPTIONS);
  let endpoints: string[];
  if (options.gateways !== undefined) {
    if (!Array.isArray(options.gateways) || options.gateways.length === 0) {
      throw new InvalidArgumentError("Expected Controller option `gateways` to be a non-empty array of endpoints");
    }
    endpoints = options.gateways.map((g) => normalizeEndpoint(g));
  } else {
    const { host, port } = splitHostPort(
      "Controller",
      nonEmptyStringOption("Controller", "host", options.host, DEFAULT_HOST),
      options.port,
    );
    endpoints = [endpointOf(host, port ?? DEFAULT_PORT)];
  }
  const resolved = {
    endpoints,
    downloadDir: options.downloadDir ?? DEFAULT_DOWNLOAD_DIR,
    verbose: options.verbose ?? false,
    timeoutMs: intOption("Controller", "timeoutMs", options.timeoutMs, DEFAULT_TIMEOUT_MS),
    connectTimeoutMs: intOption("Controller", "connectTimeoutMs", options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS),
    maxMessageSize: intOption("Controller", "maxMessageSize", options.maxMessageSize, DEFAULT_MAX_MESSAGE_SIZE_BYTES),
    curve: options.curve,
    inspect: options.inspect,
    transport: options.transport,
  };
  if (options.curve) {
    const { publicKey, secretKey, serverPublicKey } = options.curve;
    if ([publicKey, secretKey, serverPublicKey].some((k) => typeof k !== "string" || k.length !== 40)) {
      throw new InvalidArgumentError(
        "Expected Controller option `curve` to have publicKey, secretKey and serverPublicKey as 40-character Z85 strings",
      );
    }
  }
  return resolved;
}
