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
/** Stream window granted by a client: items, and bytes. */
export const DEFAULT_STREAM_WINDOW = 2048;
export const DEFAULT_STREAM_WINDOW_BYTES = 16 * 1024 * 1024;
/** The port pynetwork listened on. */
export const DEFAULT_PORT = 1857;
export const DEFAULT_HOST = "127.0.0.1";
/** Time `gateway.stop()` gives calls in flight before it ends them. */
export const DEFAULT_STOP_GRACE_MS = 5_000;
