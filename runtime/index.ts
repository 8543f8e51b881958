/**
 * swarmnet's public entry: what a user of Gateway, Controller, Client and
 * Swarm needs, listed by name (the classes, errors and their codes, defaults,
 * byte helpers, key generation, the inspector and admin connection, and the
 * types of their options and results). The machines themselves are at
 * `swarmnet/actors`; transports, wire messages and test hooks at
 * `swarmnet/internal`, which has no stability promise. test/entries.test.ts
 * pins the names each entry exports.
 */
export { Gateway } from "./gateway.js";
export { Controller } from "./controller.js";
export { Client } from "./client.js";
export { Swarm } from "./swarm.js";
export { AdminConnection, inspectGateway } from "./admin.js";
export { startWebInspector, DEFAULT_INSPECTOR_INTERVAL_MS } from "./web-inspector.js";
export { describeMachine } from "./statechart.js";
export { reorderByIdent } from "./stream.js";
export { generateKeyPair } from "./keys.js";
export { DataType, toBytes, fromBytes, strToBytes, bytesToStr, intToBytes, bytesToInt } from "./bytes.js";
export { registerClass, MIN_CLASS_TAG } from "../protocol/codec.js";
export {
  SwarmnetError,
  PoolFullError,
  AllocationError,
  VersionMismatchError,
  RemoteError,
  SubroutineNotFoundError,
  TimeoutError,
  ConnectionError,
  ProtocolError,
  BusyError,
  HandlerCrashedError,
  SessionEndedError,
  ClosedError,
  InvalidArgumentError,
  AbortedError,
  NotAGeneratorError,
  PathNotAllowedError,
  FileNotFoundError,
  FileAccessError,
  FileIntegrityError,
  FileExistsError,
  FileBusyError,
  SourceChangedError,
  FilesNotDeliveredError,
  AdminDisabledError,
  ConnectionRefusedError,
  HandshakeError,
  ResumeRefusedError,
  MessageTooLargeError,
  ErrorCode,
  Status,
  type SessionEndReason,
} from "../protocol/errors.js";
export {
  DEFAULT_PORT,
  DEFAULT_HOST,
  DEFAULT_MAX_POOL_SIZE,
  DEFAULT_TIMEOUT_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_MESSAGE_SIZE_BYTES,
  DEFAULT_MAX_RESTARTS,
  DEFAULT_RESTART_WINDOW_MS,
  DEFAULT_STOP_GRACE_MS,
  DEFAULT_LIVENESS_MS,
  DEFAULT_STREAM_WINDOW,
  DEFAULT_STREAM_WINDOW_BYTES,
  DEFAULT_FILE_CHUNK_BYTES,
  DEFAULT_FILE_WINDOW_BYTES,
  DEFAULT_FILE_WINDOW_FILES,
  DEFAULT_FILE_SPLIT_BYTES,
  DEFAULT_REGEX_TIMEOUT_MS,
  DEFAULT_DOWNLOAD_DIR,
  DEFAULT_FILE_ROOTS,
  DEFAULT_ADMIN_TIMEOUT_MS,
} from "../protocol/limits.js";

export type { GatewayOptions, GatewayInspection, HandlerInspection, InspectCallback, AddSubroutinesOptions } from "./gateway.js";
export type { ThreadPoolInspection, ThreadWorkerInspection } from "../actors/thread-pool.js";
export type { RefusedReplies } from "../actors/dispatcher.js";
export type { ControllerOptions, GetClientOptions, GetSwarmOptions, ListSubroutinesOptions } from "./controller.js";
export type { AdminOptions } from "./admin.js";
export type { WebInspector, WebInspectorOptions } from "./web-inspector.js";
export type { MetricsOptions, GatewayMetrics } from "./metrics.js";
export type { MachineGraph, StateGraph, TransitionGraph } from "./statechart.js";
export type { TransitionRecord } from "./transition-log.js";
export type { GatewayWatch, InspectorActor } from "./inspector-feed.js";
export type { CallOptions, StreamCallback, EndOfStreamCallback } from "./client.js";
export type { StreamItem, StreamOptions } from "./stream.js";
export type { FileProgress, GetFilesOptions, SendFilesOptions, IfExists } from "./files.js";
export type { TransferReport, NotDelivered } from "../protocol/errors.js";
export type { TransferProgress } from "../actors/file-transfer.js";
export type { JobProgress, StreamProgress } from "../actors/stream-job.js";
export type { DataTypeValue } from "./bytes.js";
export type { KeyPair } from "./keys.js";
export type { ServerCurve, ClientCurve, ServerTransportStats } from "../transports/transport.js";
export type { ClassCodec } from "../protocol/codec.js";
export type { Kwargs, SubroutineInfo } from "../protocol/messages.js";
export type { Subroutine, SubroutineFailure } from "../actors/subroutines.js";
export type { CurrentRequest } from "../actors/handler.js";
