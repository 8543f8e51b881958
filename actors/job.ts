/**
 * What a handler runs outside its machine (a stream, a file transfer), and the
 * one thing such a job needs from its session: a way to answer. Jobs depend on
 * this module only, never on the session or the handler, so `session.ts`,
 * `handler.ts`, `stream-job.ts` and `file-jobs.ts` import in one direction:
 *
 *   job.ts <- stream-job.ts, file-jobs.ts <- handler.ts
 *   job.ts, handler-events.ts, delivery.ts <- session.ts <- handler.ts, dispatcher.ts, supervisor.ts
 */
import type { ClientMessage, GatewayMessage } from "../protocol/index.js";

/** Why the outbox did not send a message: the error code and text the request should get. */
export interface Refusal {
  readonly code: string;
  readonly message: string;
}

/** Sends a job's messages to its client, numbered and kept for replay by the session's delivery channel. */
export interface Replier {
  /** False when the message was refused (not encodable, too large): the request got an `error` instead. */
  reply(message: GatewayMessage, raw?: Uint8Array): boolean;
  /** Sends a message that does not answer a request (stream items) if it can; else says why, sending nothing. */
  tryReply(message: GatewayMessage, raw?: Uint8Array): Refusal | undefined;
  /** Counts a refusal from `tryReply` that ends a request. */
  countRefusal(refusal: Refusal): void;
}

/** Work a handler runs outside its machine, fed by the dispatcher. */
export interface Job {
  readonly id: number;
  /** A data-plane message for this job (credit, abort, chunk ...). */
  onMessage(message: ClientMessage, raw: Uint8Array | undefined): void;
  /** Ends the job without answering the client (handler stopped, session lost); cleanup still runs. */
  cancel(): void;
  progress(): JobProgress;
}

export interface StreamProgress {
  readonly kind: "stream";
  readonly name: string;
  readonly itemsSent: number;
  readonly bytesSent: number;
  /** Items pulled from the generator and not yet acknowledged as consumed. */
  readonly outstanding: number;
  /** The most `outstanding` ever was: never above `window`. */
  readonly maxOutstanding: number;
  readonly window: number;
}

export type JobProgress = StreamProgress | { readonly kind: string; readonly [key: string]: unknown };

export type JobOutcome =
  | { readonly type: "done"; readonly count: number }
  | { readonly type: "aborted"; readonly count: number }
  | { readonly type: "failed"; readonly code: string; readonly message: string; readonly name?: string; readonly stack?: string }
  /** The thread the generator ran on failed: a handler crash, answered by the supervisor. */
  | { readonly type: "crashed"; readonly message: string };
