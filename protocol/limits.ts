/**
 * Limits and defaults shared by both ends, with their units in the name.
 * Everything a peer can make the other side allocate is bounded here.
 */
export const LIMITS = {
  /** Largest CBOR array/map a decoder accepts, whatever the frame claims. */
  maxCollectionLength: 1_000_000,
} as const;

/** Largest ZeroMQ frame either side accepts; a larger one drops the connection. */
export const DEFAULT_MAX_MESSAGE_SIZE_BYTES = 64 * 1024 * 1024;
/** Deadline of one call (ping, batch get/send, close), per call or per controller. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** How long `getClient()` waits for the gateway's welcome. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Live handlers a gateway keeps at most (pynetwork's pool size). */
export const DEFAULT_MAX_POOL_SIZE = 5;
/** Restarts of one handler allowed within DEFAULT_RESTART_WINDOW_MS before its session is ended. */
export const DEFAULT_MAX_RESTARTS = 3;
export const DEFAULT_RESTART_WINDOW_MS = 10_000;
/** A session silent this long (no request, no heartbeat) is ended and its slot freed. */
export const DEFAULT_LIVENESS_MS = 15_000;
/**
 * How long a session may go without a word before either side ends it: the
 * lease plus one heartbeat period (clients heartbeat every `livenessMs / 3`),
 * so that a drop shorter than the lease survives whatever its timing against
 * the heartbeats. The gateway's sweeper and the client's delivery layer both
 * count from it.
 */
export function sessionSilenceMs(livenessMs: number): number {
  return livenessMs + Math.floor(livenessMs / 3);
}
/** Stream window granted by a client: items, and bytes. */
export const DEFAULT_STREAM_WINDOW = 2048;
export const DEFAULT_STREAM_WINDOW_BYTES = 16 * 1024 * 1024;
/**
 * How far a stream window grows by itself when the caller set none (see
 * StreamOptions.window). Over a 20 ms round trip a stream of small items
 * needed about 30,000 items in flight to fill the pipe (measured: 2,048 gave
 * 57k items/s, 32,768 gave 433k).
 */
export const DEFAULT_STREAM_WINDOW_MAX = 65_536;
/** The port pynetwork listened on. */
export const DEFAULT_PORT = 1857;
export const DEFAULT_HOST = "127.0.0.1";
/** Time `gateway.stop()` gives calls in flight before it ends them. */
export const DEFAULT_STOP_GRACE_MS = 5_000;
/** Deadline of each admin request (`AdminConnection`, `swarmnet inspect`): as long as a connect. */
export const DEFAULT_ADMIN_TIMEOUT_MS = DEFAULT_CONNECT_TIMEOUT_MS;

// ---- file transfer ------------------------------------------------------------
/** Where uploads land on a gateway, and downloads on a controller (relative to the process's cwd), as in pynetwork. */
export const DEFAULT_DOWNLOAD_DIR = "Downloads";
/** Folders a gateway serves downloads from: its cwd. */
export const DEFAULT_FILE_ROOTS: readonly string[] = Object.freeze(["."]);
/** Bytes per `file.data` message (the raw frame). Measured on loopback: 1 MiB moves a large file about 40% faster than 256 KiB; larger gains nothing. */
export const DEFAULT_FILE_CHUNK_BYTES = 1024 * 1024;
/** Bytes a file sender may run ahead of what the receiver has written (the credit window). */
export const DEFAULT_FILE_WINDOW_BYTES = 16 * 1024 * 1024;
/** Files a sender may have started and the receiver not yet completed (bounds open files on the receiver). */
export const DEFAULT_FILE_WINDOW_FILES = 128;
/** A swarm splits a file larger than this into byte ranges fetched by several clients. */
export const DEFAULT_FILE_SPLIT_BYTES = 32 * 1024 * 1024;
/** Longest a folder regex may run on the gateway (in a worker thread) before it is refused. */
export const DEFAULT_REGEX_TIMEOUT_MS = 1_000;
/**
 * Caps the gateway applies to what a peer asks for: a window or a chunk
 * beyond them is clamped, a request listing more files is refused. With
 * them, a transfer never has more than about 512 messages queued to one
 * peer, well under ZeroMQ's default high-water mark of 1000.
 */
export const MAX_FILE_CHUNK_BYTES = 16 * 1024 * 1024;
export const MAX_FILE_WINDOW_BYTES = 256 * 1024 * 1024;
export const MAX_FILE_WINDOW_FILES = 256;
export const MAX_FILES_PER_REQUEST = 100_000;
/** Longest relative path accepted on the wire, and longest single name. */
export const MAX_PATH_LENGTH = 4096;
export const MAX_NAME_LENGTH_BYTES = 255;
