/**
 * The events a handler machine takes. In a module of their own so that the
 * session (which holds the handler's ref and is fed by the dispatcher) needs
 * no import of the handler machine itself.
 */
import type {
  CallMessage,
  CancelMessage,
  FileGetMessage,
  FileListMessage,
  FilePutMessage,
  PingMessage,
  SessionCloseMessage,
  StreamOpenMessage,
} from "../protocol/index.js";
import type { JobOutcome } from "./job.js";

export type HandlerEvent =
  | { type: "ping"; message: PingMessage }
  | { type: "rpc.call"; message: CallMessage; raw: Uint8Array | undefined }
  | { type: "rpc.cancel"; message: CancelMessage }
  | { type: "stream.open"; message: StreamOpenMessage }
  | { type: "file.list"; message: FileListMessage }
  | { type: "file.get"; message: FileGetMessage }
  | { type: "file.put"; message: FilePutMessage }
  | { type: "job.finished"; id: number; outcome: JobOutcome }
  | { type: "session.close"; message: SessionCloseMessage }
  | { type: "session.end"; code: string; reason: string }
  /** Test-only fault injection (ignored unless the gateway has test hooks): crash now, whatever the state. */
  | { type: "test.crash"; reason: string }
  /** A batch subroutine returned a promise: the handler waits for it in `busy`. */
  | { type: "call.async"; message: CallMessage; promise: PromiseLike<unknown> }
  | { type: "call.done"; id: number; value: unknown }
  | { type: "call.failed"; id: number; error: unknown };

/** The plain requests a session may serve on the data plane (see `directServer` in handler.ts). */
export type DirectRequest = Extract<HandlerEvent, { type: "ping" | "rpc.call" }>;

/** What a session needs of its handler: a place to send these events. */
export interface HandlerRef {
  send(event: HandlerEvent): void;
}
