/**
 * One handler per client session: serves one request at a time, as
 * pynetwork's handlers did; parallelism comes from more handlers (a swarm).
 *
 *   idle --rpc.call (sync result: answered at once)--> idle
 *   idle --rpc.call (promise: raises call.async)--> busy.{batchGet|batchSend} --call.done/failed | rpc.cancel--> idle
 *   idle --stream.open | file.list | file.get | file.put-->
 *        busy.{streaming|listingFiles|downloading|uploading} --job.finished | rpc.cancel--> idle
 *   idle/busy --session.close--> closed (final, output reason "closed")
 *   any --session.end--> closed (final, output reason "ended": the supervisor ended it)
 *
 * A subroutine's own throw is a RemoteError for the caller and the handler
 * stays idle. A throw inside the machine itself (a bug, or the test-only
 * fault hook) puts the actor in `status: "error"`, which its parent, the
 * supervisor, receives as `xstate.error.actor.<id>` and handles.
 */
import { and, assertEvent, assign, enqueueActions, setup, type ActorRefFrom, type SnapshotFrom } from "xstate";
import {
  ErrorCode,
  describeThrown,
  errorReply,
  isInstance,
  wireValueProblem,
  type CallMessage,
  type ErrorMessage,
} from "../protocol/index.js";
import { FileDownloadJob, FileListJob, FileUploadJob } from "./file-jobs.js";
import type { RequestKind } from "./request.js";
import type { FileSandbox } from "./file-sandbox.js";
import type { DirectRequest, HandlerEvent } from "./handler-events.js";
import type { Session } from "./session.js";
import { StreamJob, iteratorOf, type Job, type JobOutcome, type JobProgress } from "./stream-job.js";
import { BadResult, ThreadCrash, invokeSubroutine, type RegisteredSubroutine, type SubroutineRegistry } from "./subroutines.js";

/** A client's routing id for logs: as text when it is printable ASCII (swarmnet's own `c` + hex ids), else hex. */
function peerName(id: Uint8Array): string {
  const text = Buffer.from(id).toString("latin1");
  return /^[\x21-\x7e]+$/.test(text) ? text : Buffer.from(id).toString("hex");
}

/** Test-only hooks: a throw from one is a handler crash (not a subroutine error). */
export interface HandlerHooks {
  beforeRequest?(info: { handlerId: number; type: string; name?: string }): void;
}

export interface HandlerInput {
  session: Session;
  registry: SubroutineRegistry;
  hooks?: HandlerHooks | undefined;
  /** Where downloads may come from and uploads go; without it file requests are refused. */
  files?: FileSandbox | undefined;
}

/** What the handler is doing right now, as `gateway.snapshot()` shows it. */
export interface CurrentRequest {
  readonly id: number;
  readonly kind: RequestKind;
  readonly name?: string;
  readonly startedAt: number;
  /** The module URL of the worker-thread pool the subroutine runs on (`addSubroutines`); absent on the event loop. */
  readonly thread?: string;
}

export interface HandlerContext {
  readonly session: Session;
  readonly registry: SubroutineRegistry;
  readonly hooks: HandlerHooks | undefined;
  readonly files: FileSandbox | undefined;
  readonly request: CurrentRequest | undefined;
  /** Set on the way to a final state; becomes the output the supervisor reads. */
  readonly ending: HandlerOutput | undefined;
}

export type { HandlerEvent };

export interface HandlerOutput {
  readonly reason: "closed" | "ended";
  /** The `session.close` request to acknowledge, when the client asked. */
  readonly requestId?: number;
}

/** Whether a subroutine's result is a promise (or any thenable); a Proxy whose trap throws is not. */
function isThenable(value: unknown): value is PromiseLike<unknown> {
  try {
    return (
      value !== null &&
      (typeof value === "object" || typeof value === "function") &&
      typeof (value as { then?: unknown }).then === "function"
    );
  } catch {
    return false;
  }
}

/** pynetwork's batch-send habit: the integer packed as 8 big-endian bytes (`intToBytes(n)`). */
function packedInt(value: Uint8Array): number | undefined {
  if (value.length !== 8) return undefined;
  const n = Number(new DataView(value.buffer, value.byteOffset, 8).getBigInt64(0));
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Answers a batch call: bytes in the raw frame, other values in CBOR, a batch
 * send's integer checked. Whatever the value (a Proxy whose traps throw
 * included), the caller gets an answer and nothing throws.
 */
function replyValue(session: Session, id: number, kind: RequestKind, name: string, result: unknown): void {
  try {
    replyValueUnsafe(session, id, kind, name, result);
  } catch (err) {
    const refusal = { code: ErrorCode.BAD_RESULT, message: `result of '${name}' could not be read: ${describeThrown(err).message}` };
    session.countRefusal(refusal);
    session.reply(errorReply(id, refusal.code, refusal.message));
  }
}

function replyValueUnsafe(session: Session, id: number, kind: RequestKind, name: string, result: unknown): void {
  let value = result;
  if (kind === "batchSend") {
    if (value === undefined || value === null) value = 0;
    if (typeof value === "bigint") value = Number(value);
    if (value instanceof Uint8Array) value = packedInt(value) ?? value;
    if (typeof value !== "number" || !Number.isInteger(value)) {
      session.reply(errorReply(id, ErrorCode.BAD_RESULT, `batch send subroutine '${name}' must return an integer, got ${typeof value}`));
      return;
    }
  }
  if (value instanceof Uint8Array) {
    session.reply({ type: "rpc.result", id, raw: true }, value);
    return;
  }
  // -0 and lone surrogates would arrive changed: refuse them (the outbox refuses what cannot be encoded or is too large).
  const problem = wireValueProblem(value);
  if (problem !== undefined) {
    const refusal = {
      code: ErrorCode.BAD_RESULT,
      message: `result of '${name}' cannot cross the wire as it is: ${problem.replace(/^value/, "the result")}`,
    };
    session.countRefusal(refusal);
    session.reply(errorReply(id, refusal.code, refusal.message));
    return;
  }
  session.reply({ type: "rpc.result", id, value });
}

/**
 * A batch call on a worker thread as the session's job: every path that ends a request
 * or a session without answering it (deadline, close, lease, stop, crash) cancels the job,
 * and cancelling stops the worker's task (piscina terminates that worker).
 */
function threadCallJob(id: number, abort: AbortController, result: PromiseLike<unknown>): Job {
  let settled = false;
  const done = (): void => {
    settled = true;
  };
  result.then(done, done);
  return {
    id,
    onMessage: () => undefined,
    cancel: () => {
      if (!settled) abort.abort();
    },
    progress: () => ({ kind: "call" }),
  };
}

/** A subroutine's throw (or rejection), whatever was thrown: reported on the gateway (the registry's reporting), answered as the caller's RemoteError (BAD_RESULT for what cannot leave a thread). */
function remoteFailure(
  registry: SubroutineRegistry,
  session: Session,
  id: number,
  name: string,
  kind: "call" | "stream",
  error: unknown,
): ErrorMessage {
  if (isInstance(error, BadResult)) return errorReply(id, ErrorCode.BAD_RESULT, error.message);
  const reply = registry.failure({ name, kind, error, handlerId: session.handlerId, client: peerName(session.peer.id), requestId: id });
  return errorReply(id, reply.code, reply.message, { name: reply.name, stack: reply.stack });
}

/**
 * Runs batch call `message` on the handler whose ref is `self`. A synchronous
 * result (or throw) is answered at once and undefined returned: nothing could
 * observe a busy state while a sync function holds the event loop anyway. A
 * promise (an async subroutine, a worker-thread call) is returned: the handler
 * must move to busy (`call.async`); its settling reaches `self` as `call.done`
 * or `call.failed`.
 */
function runBatch(
  session: Session,
  registry: SubroutineRegistry,
  self: { send(event: HandlerEvent): void; getSnapshot(): { status: string } },
  entry: RegisteredSubroutine,
  message: CallMessage,
  raw: Uint8Array | undefined,
): PromiseLike<unknown> | undefined {
  const { id, name, args, kwargs, mode } = message;
  let result: unknown;
  // Only a worker-thread call can be stopped from outside; one on the event loop is never interrupted.
  const abort = entry.thread === undefined ? undefined : new AbortController();
  try {
    result = invokeSubroutine(entry, args, mode === "send" ? { ...kwargs, buffer: raw } : kwargs, abort?.signal);
  } catch (error) {
    session.reply(remoteFailure(registry, session, id, name, "call", error));
    session.served++;
    return undefined;
  }
  if (isThenable(result)) {
    const settle = (next: HandlerEvent): void => {
      if (self.getSnapshot().status === "active") self.send(next);
    };
    // Promise.resolve adopts any thenable; a `then` that throws becomes a rejection, not a handler crash.
    Promise.resolve(result).then(
      (value) => settle({ type: "call.done", id, value }),
      (error: unknown) => settle({ type: "call.failed", id, error }),
    );
    if (abort !== undefined) session.job = threadCallJob(id, abort, result);
    return result;
  }
  replyValue(session, id, mode === "send" ? "batchSend" : "batchGet", name, result);
  session.served++;
  return undefined;
}

/**
 * The data plane for plain requests: a ping, or a batch call of a known
 * subroutine, served without a machine transition while the handler is idle
 * (and has no test hooks, whose throws must be crashes of the machine). A ping
 * is answered; a call runs (`runBatch`): a synchronous answer leaves the handler
 * idle, a promise moves it to `busy` with the request, as `gateway.snapshot()`,
 * `swarmnet inspect` and an xstate inspector then see. Returns false when the
 * request must go to the machine as an event instead.
 */
export function directServer(ref: HandlerActorRef): (request: DirectRequest) => boolean {
  return (request) => {
    const snapshot = ref.getSnapshot();
    if (snapshot.status !== "active" || snapshot.context.hooks !== undefined) return false;
    const { session, registry } = snapshot.context;
    if (request.type === "ping") {
      session.reply({ type: "pong", id: request.message.id, data: request.message.data });
      session.served++;
      return true;
    }
    if (snapshot.value !== "idle" || session.deferred !== undefined) return false;
    const entry = registry.get(request.message.name);
    if (entry?.kind !== "function") return false;
    const promise = runBatch(session, registry, ref, entry, request.message, request.raw);
    if (promise !== undefined) ref.send({ type: "call.async", message: request.message, promise });
    return true;
  };
}

export const handlerMachine = setup({
  types: {
    input: {} as HandlerInput,
    context: {} as HandlerContext,
    events: {} as HandlerEvent,
    output: {} as HandlerOutput,
  },
  guards: {
    isKnownBatch: ({ context, event }) => {
      if (event.type !== "rpc.call") return false;
      const entry = context.registry.get(event.message.name);
      return entry !== undefined && entry.kind === "function";
    },
    isSend: ({ event }) => (event.type === "rpc.call" || event.type === "call.async") && event.message.mode === "send",
    isCurrent: ({ context, event }) => (event.type === "call.done" || event.type === "call.failed") && context.request?.id === event.id,
    isCrash: ({ event }) =>
      (event.type === "call.failed" && isInstance(event.error, ThreadCrash)) ||
      (event.type === "job.finished" && event.outcome.type === "crashed"),
    isKnownStream: ({ context, event }) => event.type === "stream.open" && context.registry.get(event.message.name) !== undefined,
    isJobOfCurrent: ({ context, event }) => event.type === "job.finished" && context.request?.id === event.id,
    hasFiles: ({ context }) => context.files !== undefined,
    currentAnswered: ({ context }) => context.request !== undefined && context.session.lastAnswered === context.request.id,
    isCancelOfCurrent: ({ context, event }) => event.type === "rpc.cancel" && context.request?.id === event.message.id,
  },
  actions: {
    faultHook: ({ context, event }) => {
      const hook = context.hooks?.beforeRequest;
      if (!hook) return;
      const name = event.type === "rpc.call" || event.type === "stream.open" ? event.message.name : undefined;
      hook({ handlerId: context.session.handlerId, type: event.type, ...(name === undefined ? {} : { name }) });
    },
    pong: ({ context, event }) => {
      assertEvent(event, "ping");
      context.session.reply({ type: "pong", id: event.message.id, data: event.message.data });
      context.session.served++;
    },
    replyUnknown: ({ context, event }) => {
      assertEvent(event, ["rpc.call", "stream.open"]);
      const { id, name } = event.message;
      const entry = context.registry.get(name);
      context.session.reply(
        entry === undefined
          ? errorReply(id, ErrorCode.SUBROUTINE_NOT_FOUND, `no subroutine named '${name}'`)
          : errorReply(id, ErrorCode.BAD_RESULT, `subroutine '${name}' is a generator: call it as a stream`),
      );
    },
    replyNoFiles: ({ context, event }) => {
      assertEvent(event, ["file.list", "file.get", "file.put"]);
      context.session.reply(errorReply(event.message.id, ErrorCode.PATH_NOT_ALLOWED, "this gateway serves no files"));
    },
    defer: ({ context, event }) => {
      assertEvent(event, ["rpc.call", "stream.open", "file.list", "file.get", "file.put"]);
      if (context.session.deferred === undefined) context.session.deferred = event;
      else context.session.reply(errorReply(event.message.id, ErrorCode.BUSY, "handler is busy with another request"));
    },
    serveDeferred: ({ context, self }) => {
      const deferred = context.session.deferred as HandlerEvent | undefined;
      if (deferred === undefined) return;
      context.session.deferred = undefined;
      self.send(deferred);
    },
    replyBusy: ({ context, event }) => {
      assertEvent(event, ["rpc.call", "stream.open", "file.list", "file.get", "file.put"]);
      context.session.reply(errorReply(event.message.id, ErrorCode.BUSY, "handler is busy with another request"));
    },
    startRequest: assign({
      request: ({ context, event }) => {
        assertEvent(event, ["call.async", "stream.open", "file.list", "file.get", "file.put"]);
        if (event.type === "stream.open") {
          const thread = context.registry.get(event.message.name)?.thread;
          return {
            id: event.message.id,
            name: event.message.name,
            kind: "stream",
            startedAt: Date.now(),
            ...(thread === undefined ? {} : { thread }),
          } as const;
        }
        if (event.type === "file.list") {
          return {
            id: event.message.id,
            name: event.message.folder ?? `${event.message.files?.length ?? 0} files`,
            kind: "listFiles",
            startedAt: Date.now(),
          } as const;
        }
        if (event.type === "file.get") {
          return {
            id: event.message.id,
            name: event.message.folder ?? `${event.message.files.length} files`,
            kind: "download",
            startedAt: Date.now(),
          } as const;
        }
        if (event.type === "file.put") {
          return { id: event.message.id, name: event.message.dirname, kind: "upload", startedAt: Date.now() } as const;
        }
        const { id, name, mode } = event.message;
        const thread = context.registry.get(name)?.thread;
        return {
          id,
          name,
          kind: mode === "send" ? "batchSend" : "batchGet",
          startedAt: Date.now(),
          ...(thread === undefined ? {} : { thread }),
        } as const;
      },
    }),
    startStream: ({ context, event, self }) => {
      assertEvent(event, "stream.open");
      const { id, name, args, kwargs, window, windowBytes } = event.message;
      const entry = context.registry.get(name)!;
      const finish = (outcome: JobOutcome): void => {
        if (self.getSnapshot().status === "active") self.send({ type: "job.finished", id, outcome });
      };
      let iterator: ReturnType<typeof iteratorOf>;
      try {
        iterator = iteratorOf(invokeSubroutine(entry, args, kwargs));
      } catch (error) {
        finish({
          type: "failed",
          ...context.registry.failure({
            name,
            kind: "stream",
            error,
            handlerId: context.session.handlerId,
            client: peerName(context.session.peer.id),
            requestId: id,
          }),
        });
        return;
      }
      if (!iterator) {
        finish({
          type: "failed",
          code: ErrorCode.NOT_A_GENERATOR,
          message: `subroutine '${name}' is not a generator: call it with getSubroutineBatch`,
        });
        return;
      }
      const session = context.session;
      const registry = context.registry;
      const onThrow = (error: unknown) =>
        registry.failure({ name, kind: "stream", error, handlerId: session.handlerId, client: peerName(session.peer.id), requestId: id });
      const job = new StreamJob({ id, name, session, iterator, window, windowBytes, onFinish: finish, onThrow });
      context.session.job = job;
      job.start();
    },
    // Chunks and credit go between the dispatcher and the job; the machine only knows the transfer runs.
    startFileJob: ({ context, event, self }) => {
      assertEvent(event, ["file.list", "file.get", "file.put"]);
      const id = event.message.id;
      const onFinish = (outcome: JobOutcome): void => {
        if (self.getSnapshot().status === "active") self.send({ type: "job.finished", id, outcome });
      };
      const session = context.session;
      const sandbox = context.files!;
      const job =
        event.type === "file.list"
          ? new FileListJob({ message: event.message, session, sandbox, onFinish })
          : event.type === "file.get"
            ? new FileDownloadJob({ message: event.message, session, sandbox, onFinish })
            : new FileUploadJob({ message: event.message, session, sandbox, onFinish });
      session.job = job;
      job.start();
    },
    replyJobFailure: ({ context, event }) => {
      // Only failures before the job existed are answered here; a running job answers for itself.
      assertEvent(event, "job.finished");
      if (event.outcome.type !== "failed" || context.session.job !== undefined) return;
      const { code, message } = event.outcome;
      context.session.reply(errorReply(event.id, code, message, { name: event.outcome.name }));
    },
    clearJob: ({ context }) => context.session.cancelJob(),
    /**
     * A batch call runs right here (see `runBatch`): a synchronous result is
     * answered at once and the handler stays idle; a promise moves it to busy.
     */
    runBatch: enqueueActions(({ context, event, enqueue, self }) => {
      assertEvent(event, "rpc.call");
      const entry = context.registry.get(event.message.name);
      if (entry === undefined) return; // the isKnownBatch guard let only a known name through
      const promise = runBatch(context.session, context.registry, self, entry, event.message, event.raw);
      if (promise !== undefined) enqueue.raise({ type: "call.async", message: event.message, promise });
    }),
    replyResult: ({ context, event }) => {
      assertEvent(event, "call.done");
      if (!context.request) return;
      const { id, kind, name } = context.request;
      replyValue(context.session, id, kind, name ?? "", event.value);
    },
    replyFailure: ({ context, event }) => {
      assertEvent(event, "call.failed");
      if (!context.request) return;
      context.session.reply(
        remoteFailure(context.registry, context.session, context.request.id, context.request.name ?? "", "call", event.error),
      );
    },
    endRequest: enqueueActions(({ enqueue }) => {
      enqueue(({ context }) => {
        context.session.served++;
      });
      enqueue.assign({ request: undefined });
    }),
    /** The subroutine's thread failed: a crash of this handler, so the supervisor's restart budget applies. */
    crash: ({ event }) => {
      assertEvent(event, ["call.failed", "job.finished"]);
      const message =
        event.type === "call.failed"
          ? (event.error as Error).message
          : event.outcome.type === "crashed"
            ? event.outcome.message
            : "thread failed";
      throw new ThreadCrash(message);
    },
  },
}).createMachine({
  id: "handler",
  context: ({ input }) => ({
    session: input.session,
    registry: input.registry,
    hooks: input.hooks,
    files: input.files,
    request: undefined,
    ending: undefined,
  }),
  initial: "idle",
  on: {
    ping: { actions: ["faultHook", "pong"] },
    "session.close": {
      target: ".closed",
      actions: [
        "clearJob",
        assign({
          request: () => undefined,
          ending: ({ event }) => ({ reason: "closed", requestId: event.message.id }) as const,
        }),
      ],
    },
    "test.crash": {
      actions: ({ context, event }) => {
        if (context.hooks) throw new Error(event.reason);
      },
    },
    "session.end": {
      target: ".closed",
      actions: ["clearJob", assign({ request: () => undefined, ending: () => ({ reason: "ended" }) as const })],
    },
  },
  states: {
    idle: {
      description: "No request running: a sync call is answered here (no transition); a deferred request is served on entry.",
      entry: "serveDeferred",
      on: {
        "rpc.call": [{ guard: "isKnownBatch", actions: ["faultHook", "runBatch"] }, { actions: ["faultHook", "replyUnknown"] }],
        "call.async": [
          { guard: "isSend", target: "busy.batchSend", actions: "startRequest" },
          { target: "busy.batchGet", actions: "startRequest" },
        ],
        "stream.open": [
          { guard: "isKnownStream", target: "busy.streaming", actions: ["faultHook", "startRequest"] },
          { actions: ["faultHook", "replyUnknown"] },
        ],
        "file.list": [
          { guard: "hasFiles", target: "busy.listingFiles", actions: ["faultHook", "startRequest"] },
          { actions: "replyNoFiles" },
        ],
        "file.get": [
          { guard: "hasFiles", target: "busy.downloading", actions: ["faultHook", "startRequest"] },
          { actions: "replyNoFiles" },
        ],
        "file.put": [{ guard: "hasFiles", target: "busy.uploading", actions: ["faultHook", "startRequest"] }, { actions: "replyNoFiles" }],
      },
    },
    busy: {
      description:
        "One request runs (context.request); a request that comes once it was answered waits for idle, any other is refused BUSY.",
      initial: "batchGet",
      states: {
        // A call on a worker thread is the session's job while it runs (see threadCallJob).
        batchGet: {
          description: "A batch get whose subroutine returned a promise: waiting for call.done / call.failed.",
          exit: "clearJob",
        },
        batchSend: {
          description: "A batch send whose subroutine returned a promise: waiting for call.done / call.failed.",
          exit: "clearJob",
        },
        // Items flow through the StreamJob (data plane); the machine knows the stream runs and can end it.
        streaming: {
          description: "A StreamJob pulls the generator under the client's credit until job.finished.",
          entry: "startStream",
          exit: "clearJob",
          on: {
            "job.finished": [
              { guard: "isCrash", actions: "crash" },
              { guard: "isJobOfCurrent", target: "#handler.idle", actions: ["replyJobFailure", "endRequest"] },
            ],
          },
        },
        listingFiles: {
          description: "A FileListJob walks the folder or files asked for until job.finished.",
          entry: "startFileJob",
          exit: "clearJob",
          on: { "job.finished": { guard: "isJobOfCurrent", target: "#handler.idle", actions: "endRequest" } },
        },
        // A download: the gateway reads and sends under the client's credit.
        downloading: {
          description: "A download: a FileDownloadJob reads and sends under the client's credit until job.finished.",
          entry: "startFileJob",
          exit: "clearJob",
          on: { "job.finished": { guard: "isJobOfCurrent", target: "#handler.idle", actions: "endRequest" } },
        },
        // An upload: the gateway writes NAME.part files and renames each when complete.
        uploading: {
          description: "An upload: a FileUploadJob writes NAME.part files until job.finished.",
          entry: "startFileJob",
          exit: "clearJob",
          on: { "job.finished": { guard: "isJobOfCurrent", target: "#handler.idle", actions: "endRequest" } },
        },
      },
      on: {
        // The client sends its next request as soon as the last one is answered; the handler may
        // still be wrapping up that job. Such a request waits for idle; any other is refused as busy.
        "rpc.call": [{ guard: "currentAnswered", actions: "defer" }, { actions: "replyBusy" }],
        "stream.open": [{ guard: "currentAnswered", actions: "defer" }, { actions: "replyBusy" }],
        "file.list": [{ guard: "currentAnswered", actions: "defer" }, { actions: "replyBusy" }],
        "file.get": [{ guard: "currentAnswered", actions: "defer" }, { actions: "replyBusy" }],
        "file.put": [{ guard: "currentAnswered", actions: "defer" }, { actions: "replyBusy" }],
        "call.done": { guard: "isCurrent", target: "idle", actions: ["replyResult", "endRequest"] },
        "call.failed": [
          { guard: and(["isCurrent", "isCrash"]), actions: "crash" },
          { guard: "isCurrent", target: "idle", actions: ["replyFailure", "endRequest"] },
        ],
        // The caller's deadline passed: drop the call (its late result is ignored; a worker-thread task is
        // stopped) and serve the next one.
        "rpc.cancel": { guard: "isCancelOfCurrent", target: "idle", actions: "endRequest" },
      },
    },
    closed: { description: "The session closed (output reason closed) or was ended by the supervisor (ended).", type: "final" },
  },
  output: ({ context }) => context.ending ?? { reason: "ended" },
});

/** What a running job reports, for snapshots: items or bytes done. */
export type { JobProgress };

export type HandlerActorRef = ActorRefFrom<typeof handlerMachine>;
export type HandlerSnapshot = SnapshotFrom<typeof handlerMachine>;
