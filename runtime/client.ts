import { failInFlight, startCall, type ClientActorRef, type PendingCall } from "../actors/client.js";
import {
  batchGetRequest,
  batchSendRequest,
  checkTarget,
  checkTimeout,
  encodeRequest,
  pingRequest,
  plainRequest,
  streamRequest,
  wireProblem,
  type Request,
} from "../actors/request.js";
import { DeliveryLink, type LinkStats } from "../actors/delivery-link.js";
import {
  ClosedError,
  DEFAULT_STREAM_WINDOW,
  DEFAULT_STREAM_WINDOW_MAX,
  DEFAULT_STREAM_WINDOW_BYTES,
  InvalidArgumentError,
  MAX_TIMER_DELAY_MS,
  encode,
  type FileListingMessage,
  type Kwargs,
  type SubroutineInfo,
  type SwarmnetError,
} from "../protocol/index.js";
import {
  getFiles,
  sendFiles,
  type GetFilesOptions,
  type SendFilesOptions,
  type SinkControl,
  type TransferChannel,
  type TransferSink,
} from "./files.js";
import { CallQueue } from "./call-queue.js";
import type { GatewayInspection } from "./gateway.js";
import { atAwaiter, atCallSite, captureCallSite } from "./call-site.js";
import { StreamReader, abortReason, type StreamItem, type StreamOptions } from "./stream.js";
import { stateName, untilSnapshot } from "./wait.js";

/** Whether `promise` settles within `ms` (the timer is cleared either way, so it never holds Node). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.min(Math.max(0, ms), MAX_TIMER_DELAY_MS));
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timedOut,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A stream callback: return `false` (or a promise of it) to abort the stream. */
export type StreamCallback<T = Uint8Array> = (name: string, ident: number, buffer: T) => unknown;
/** Runs when a stream ends without an abort from this side. */
export type EndOfStreamCallback = (name: string) => unknown;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === "object" && typeof (value as { then?: unknown }).then === "function";
}

export interface CallOptions {
  /**
   * Deadline of this call in ms, counted from when the call is made (time
   * spent queued behind other calls on this client included); any positive
   * integer, 2^31 ms and beyond too. @default the controller's `timeoutMs`
   */
  timeoutMs?: number;
}

const MAX_REQUEST_ID = 0xffff_ffff;

/**
 * One client-handler pair: its own DEALER socket and TCP connection, one
 * request at a time (calls made concurrently wait their turn in a p-queue).
 */
export class Client {
  readonly endpoint: string;
  readonly #ref: ClientActorRef;
  readonly #queue = new CallQueue();
  readonly #timeoutMs: number;
  readonly #onClosed: (client: Client) => void;
  readonly #files: { readonly downloadDir: string; readonly verbose: boolean };
  #nextId = 1;

  /** @internal Made by `Controller.getClient()`. */
  constructor(
    ref: ClientActorRef,
    endpoint: string,
    timeoutMs: number,
    onClosed: (client: Client) => void,
    files: { readonly downloadDir: string; readonly verbose: boolean } = { downloadDir: "Downloads", verbose: false },
  ) {
    this.#files = files;
    this.#ref = ref;
    this.endpoint = endpoint;
    this.#timeoutMs = timeoutMs;
    this.#onClosed = onClosed;
    // The session is over (closed, refused, failed, ended by the gateway or the link layer, or the
    // actor stopped from outside, which runs no exit actions): every call still waiting in the queue
    // fails at once with the reason, and the call in flight too, so nothing waits for its deadline.
    const abandon = (): void => {
      const { slot, error } = this.#ref.getSnapshot().context;
      failInFlight(slot, new ClosedError("client actor stopped"));
      this.#queue.failAll(() => error ?? new ClosedError("client closed"), { inFlight: true });
      // A client whose session ended without closeHandler() leaves the controller's list (and its id) too.
      this.#onClosed(this);
    };
    this.#ref.subscribe({ complete: abandon, error: abandon });
  }

  /** @internal Waits for the gateway's welcome; rejects with its refusal or a timeout. */
  async connected(): Promise<this> {
    const snapshot = await untilSnapshot(this.#ref, (s) => s.value !== "connecting");
    if (snapshot.value !== "ready") {
      this.#onClosed(this);
      throw snapshot.context.error ?? new ClosedError("client closed while connecting");
    }
    return this;
  }

  /** The handler serving this client on the gateway. */
  get handlerId(): number | undefined {
    return this.#ref.getSnapshot().context.handlerId;
  }

  /**
   * The client machine's state: connecting, ready, streaming, closing, closed, failed. A plain call in
   * flight leaves it `ready` (the data plane); `actor.getSnapshot().context.slot.call` is that call.
   */
  get state(): string {
    return stateName(this.#ref.getSnapshot().value);
  }

  /** The client actor, for inspection and composition. */
  get actor(): ClientActorRef {
    return this.#ref;
  }

  /**
   * What this client's delivery layer did: messages sent, resent (and their
   * bytes) after link drops, duplicates and gaps dropped, reconnects and resumes.
   */
  get delivery(): LinkStats | undefined {
    const transport = this.#ref.getSnapshot().context.transport;
    return transport instanceof DeliveryLink ? transport.stats : undefined;
  }

  /**
   * Round trip to the handler (pynetwork's `ping`): resolves with `data` as the
   * handler echoed it (any CBOR value; default the string "ping").
   * @throws InvalidArgumentError (SWARMNET_INVALID_ARGUMENT) for `data` that cannot cross the wire or a bad `timeoutMs`
   * @throws TimeoutError (SWARMNET_TIMEOUT) past `timeoutMs` (queued time included); the handler drops the call
   * @throws SessionEndedError (SWARMNET_SESSION_ENDED, with `reason`) when the session ends first (link down past the lease, gateway stopped or restarted)
   * @throws ClosedError (SWARMNET_CLOSED) when this client is or gets closed; HandlerCrashedError (SWARMNET_HANDLER_CRASHED) when the handler crashed serving it
   */
  ping<T = string>(data: T | string = "ping", options?: CallOptions): Promise<T | string> {
    return this.#call(pingRequest(data), options) as Promise<T | string>;
  }

  /**
   * Batch get (pynetwork's `get_subroutine_batch`): calls `name(...args, kwargs)`
   * on the gateway. Resolves with the bytes it returned (a Uint8Array), or with
   * the CBOR value it returned.
   * @throws InvalidArgumentError (SWARMNET_INVALID_ARGUMENT), at once, for an empty name, args not an array, kwargs not a plain object; rejects with it for values that cannot cross the wire
   * @throws SubroutineNotFoundError (SWARMNET_SUBROUTINE_NOT_FOUND), RemoteError (SWARMNET_REMOTE_ERROR: the subroutine threw; `remoteName`, `remoteStack`), RemoteError with code SWARMNET_BAD_RESULT (a result that cannot cross the wire, or the subroutine is a generator)
   * @throws MessageTooLargeError (SWARMNET_MESSAGE_TOO_LARGE) for a request over the smaller `maxMessageSize`: not sent
   * @throws TimeoutError (SWARMNET_TIMEOUT) past `timeoutMs` (queued time included); the handler drops the call
   * @throws SessionEndedError (SWARMNET_SESSION_ENDED, with `reason`) when the session ends first (link down past the lease, gateway stopped or restarted)
   * @throws ClosedError (SWARMNET_CLOSED) when this client is or gets closed; HandlerCrashedError (SWARMNET_HANDLER_CRASHED) when the handler crashed serving it
   */
  getSubroutineBatch<T = Uint8Array>(name: string, args: readonly unknown[] = [], kwargs: Kwargs = {}, options?: CallOptions): Promise<T> {
    const request = batchGetRequest("getSubroutineBatch", name, args, kwargs);
    if (request instanceof InvalidArgumentError) throw request;
    return this.#call(request, options) as Promise<T>;
  }

  /**
   * Batch send (pynetwork's `send_subroutine_batch`): `buffer` reaches the
   * subroutine as `kwargs.buffer`, uncopied in its own frame. Resolves with the
   * integer the subroutine returned (none: 0; 8 big-endian bytes are read as one).
   * @throws InvalidArgumentError (SWARMNET_INVALID_ARGUMENT), at once, for a bad name, args or kwargs; rejects with it for a buffer that is not a Uint8Array or a `kwargs.buffer` given
   * @throws RemoteError with code SWARMNET_BAD_RESULT when the subroutine returns something other than an integer; the errors of `getSubroutineBatch`
   */
  sendSubroutineBatch(
    name: string,
    buffer: Uint8Array,
    args: readonly unknown[] = [],
    kwargs: Kwargs = {},
    options?: CallOptions,
  ): Promise<number> {
    // A bad name, args or kwargs throws at once (as getSubroutineBatch); a bad buffer rejects.
    const bad = checkTarget("sendSubroutineBatch", name, args, kwargs);
    if (bad !== undefined) throw bad;
    const request = batchSendRequest("sendSubroutineBatch", name, buffer, args, kwargs);
    if (request instanceof InvalidArgumentError) return Promise.reject(request);
    return this.#call(request, options) as Promise<number>;
  }

  /**
   * Streams a generator subroutine: `callback(name, ident, buffer)` runs once
   * per item, in order; returning `false` aborts. `eosCallback(name)` runs when
   * the stream ends without an abort. Resolves when the stream is over; rejects
   * with RemoteError if the generator throws (after the items before the throw).
   * pynetwork's `get_subroutine_stream`; a stream ends when the generator returns,
   * yields an ident < 0 or a null buffer.
   * @throws InvalidArgumentError (SWARMNET_INVALID_ARGUMENT) for a callback that is not a function, or the bad input `stream()` refuses
   * @throws NotAGeneratorError (SWARMNET_NOT_A_GENERATOR), SubroutineNotFoundError, RemoteError, TimeoutError (no first item within `timeoutMs`, or a gap past `idleTimeoutMs`), SessionEndedError, ClosedError, AbortedError (SWARMNET_ABORTED: `options.signal`)
   */
  async getSubroutineStream<T = Uint8Array>(
    name: string,
    callback: StreamCallback<T>,
    eosCallback?: EndOfStreamCallback,
    args: readonly unknown[] = [],
    kwargs: Kwargs = {},
    options: StreamOptions = {},
  ): Promise<void> {
    if (typeof callback !== "function") throw new InvalidArgumentError("getSubroutineStream: callback must be a function");
    let aborted = false;
    for await (const [ident, buffer] of this.stream<T>(name, args, kwargs, options)) {
      const verdict = callback(name, ident, buffer);
      if ((isThenable(verdict) ? await verdict : verdict) === false) {
        aborted = true;
        break;
      }
    }
    if (!aborted) {
      const done = eosCallback?.(name);
      if (isThenable(done)) await done;
    }
  }

  /**
   * Streams a generator subroutine as an AsyncIterable of `[ident, buffer]`.
   * `break`, `return()` or `options.signal` aborts it (the generator's
   * `finally` runs on the gateway). One consumer per stream.
   *
   * ```ts
   * for await (const [ident, reading] of client.stream("sensor", [4, 55])) { ... }
   * ```
   * @throws InvalidArgumentError (SWARMNET_INVALID_ARGUMENT), at once, for a bad name, args, kwargs, `window` (1..1,048,576 items), `windowBytes`, `timeoutMs` or `idleTimeoutMs`; a second consumer of one stream
   * @throws (from the iterator) NotAGeneratorError (SWARMNET_NOT_A_GENERATOR), SubroutineNotFoundError, RemoteError (the generator threw, after the items before it), TimeoutError (SWARMNET_TIMEOUT: no first item within `timeoutMs`, or a gap past `idleTimeoutMs`), SessionEndedError, ClosedError, AbortedError (`options.signal`)
   */
  stream<T = Uint8Array>(
    name: string,
    args: readonly unknown[] = [],
    kwargs: Kwargs = {},
    options: StreamOptions = {},
  ): AsyncIterable<StreamItem<T>> {
    const request = streamRequest(
      "stream",
      name,
      args,
      kwargs,
      options.window ?? DEFAULT_STREAM_WINDOW,
      options.windowBytes ?? DEFAULT_STREAM_WINDOW_BYTES,
    );
    if (request instanceof InvalidArgumentError) throw request;
    // Validated like a batch call's: 0, -1, NaN or Infinity would make the reader's timer fire at once or never.
    const badTimeout = checkTimeout("stream", options.timeoutMs ?? this.#timeoutMs);
    if (badTimeout !== undefined) throw badTimeout;
    if (options.idleTimeoutMs !== undefined && (!Number.isInteger(options.idleTimeoutMs) || options.idleTimeoutMs <= 0)) {
      throw new InvalidArgumentError(`stream: idleTimeoutMs must be a positive integer (ms), got ${String(options.idleTimeoutMs)}`);
    }
    let consumed = false;
    return {
      [Symbol.asyncIterator]: () => {
        if (consumed) throw new InvalidArgumentError("a stream has one consumer: call client.stream() again for another");
        consumed = true;
        return this.#openStream<T>(request, options);
      },
    };
  }

  #openStream<T>(request: Request, options: StreamOptions): AsyncIterator<StreamItem<T>> {
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const id = this.#allocateId();
    const { label, message } = request;
    const reader = new StreamReader<T>(id, this.#sinkControl(id), {
      window: message["window"] as number,
      windowMax: options.window === undefined ? DEFAULT_STREAM_WINDOW_MAX : undefined,
      windowBytes: message["windowBytes"] as number,
      timeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      label,
    });
    const signal = options.signal;
    if (signal?.aborted) {
      reader.fail(abortReason(signal));
      return reader;
    }
    const onAbort = (): void => void reader.abort(abortReason(signal!));
    signal?.addEventListener("abort", onAbort, { once: true });
    const callSite = captureCallSite(true);
    this.#queue
      .run<unknown>(
        ({ resolve, reject }) => {
          const closed = this.#closedError();
          if (closed) return reject(closed);
          if (reader.end !== "open" || reader.failed) return resolve(undefined); // aborted or timed out before it began
          const problem = wireProblem(request);
          if (problem !== undefined) return reject(problem);
          const frames = encodeRequest(request, id);
          if (frames instanceof InvalidArgumentError) return reject(frames);
          const call: PendingCall = {
            id,
            kind: "stream",
            frames,
            timeoutMs,
            resolve,
            reject: (error: SwarmnetError) => reject(atCallSite(error, callSite)),
            sink: reader,
            label,
          };
          reader.markOpened();
          startCall(this.#ref, call);
        },
        { what: `stream '${String(message["name"])}'` },
      )
      .then(
        () => undefined,
        (error: unknown) => reader.fail(error),
      )
      .finally(() => signal?.removeEventListener("abort", onAbort));
    return reader;
  }

  /**
   * Downloads a folder (`{ folder, regex? }`, recursive, empty folders too) or
   * `{ files }` into the controller's `downloadDir` (or the call's), in one
   * request (no round trip per file). Resolves with the local paths. Each file
   * is written as `NAME.part` and renamed when complete and size-checked
   * (`verify: true` adds SHA-256); an interrupted download resumes the ranges
   * its journal lists next time. `ifExists` (default `"overwrite"`) decides
   * about existing targets.
   * @throws FilesNotDeliveredError (SWARMNET_FILES_NOT_DELIVERED) when some paths were not delivered: its `report` says which and why; the rest are in place.
   * @throws FileNotFoundError (missing folder or file), PathNotAllowedError (refused path, naming the roots), FileAccessError (a download folder that cannot be made or written), TimeoutError, AbortedError.
   *
   * ```ts
   * const paths = await client.getFilesFromGateway({ folder: "logs", regex: "\\.log$" });
   * ```
   */
  getFilesFromGateway(options: GetFilesOptions): Promise<string[]> {
    return getFiles(this.#channel(), options);
  }

  /**
   * Uploads local `files` into `downloadDir/dirname` on the gateway (under their
   * base names). Resolves with the number of files in place (skipped ones not
   * counted); an interrupted upload resumes on the gateway.
   * @throws FilesNotDeliveredError (SWARMNET_FILES_NOT_DELIVERED) when some files were not delivered, with a `report`.
   */
  sendFilesToGateway(options: SendFilesOptions): Promise<number> {
    return sendFiles(this.#channel(), options);
  }

  /** @internal What file transfers (runtime/files.ts) need from this client. */
  get transferChannel(): TransferChannel {
    return this.#channel();
  }

  #channel(): TransferChannel {
    return {
      endpoint: this.endpoint,
      downloadDir: this.#files.downloadDir,
      verbose: this.#files.verbose,
      timeoutMs: this.#timeoutMs,
      list: (message, timeoutMs) => this.#call(plainRequest("listFiles", message), { timeoutMs }) as Promise<FileListingMessage>,
      run: (message, makeSink, timeoutMs) => this.#runSink(message, makeSink, timeoutMs),
    };
  }

  /** Queues one request whose replies go to a sink (a transfer); settles when the sink finishes or fails. */
  #runSink(
    message: Record<string, unknown>,
    makeSink: (id: number, control: SinkControl) => TransferSink,
    timeoutMs: number,
  ): Promise<void> {
    // file.get brings files here (a download), file.put takes them there (an upload).
    const request = plainRequest(message["type"] === "file.put" ? "upload" : "download", message);
    const callSite = captureCallSite(true);
    let sink: TransferSink | undefined;
    return this.#queue
      .run<unknown>(
        ({ resolve, reject }) => {
          const closed = this.#closedError();
          if (closed) return reject(closed);
          const id = this.#allocateId();
          const frames = encodeRequest(request, id);
          if (frames instanceof InvalidArgumentError) return reject(frames);
          sink = makeSink(id, this.#sinkControl(id));
          const call: PendingCall = {
            id,
            kind: request.kind,
            frames,
            timeoutMs,
            resolve,
            reject: (error: SwarmnetError) => reject(atCallSite(error, callSite)),
            sink,
            label: request.label,
          };
          sink.start();
          startCall(this.#ref, call);
        },
        { what: `transfer '${String(message["type"])}'` },
      )
      .then(
        () => undefined,
        (error: unknown) => {
          sink?.stop(error);
          throw error;
        },
      );
  }

  /**
   * The gateway's `snapshot()` (supervisor, pool, each handler's state, request
   * and progress), over this client's connection. The gateway must have been
   * started with `admin: true`, else this rejects with AdminDisabledError. To
   * look without holding a pool slot, use `inspectGateway(endpoint)`.
   * @throws AdminDisabledError (SWARMNET_ADMIN_DISABLED) without `admin: true`; TimeoutError, SessionEndedError, ClosedError as any call
   */
  async inspectGateway(options?: CallOptions): Promise<GatewayInspection> {
    return (await this.#call(plainRequest("inspect", { type: "admin.snapshot" }, "inspectGateway"), options)) as GatewayInspection;
  }

  /**
   * The gateway's subroutines, sorted by name, each with whether it streams
   * (call it with `stream()` / `getSubroutineStream()`) or not (a batch call). To list
   * without holding a pool slot (a full pool), use `controller.listSubroutines()`.
   *
   * ```ts
   * for (const { name, stream } of await client.listSubroutines()) console.log(name, stream ? "stream" : "call");
   * ```
   * @throws TimeoutError (SWARMNET_TIMEOUT), SessionEndedError (SWARMNET_SESSION_ENDED), ClosedError (SWARMNET_CLOSED) as any call
   */
  async listSubroutines(options?: CallOptions): Promise<SubroutineInfo[]> {
    return [...((await this.#call(plainRequest("listSubroutines", { type: "subroutine.list" }), options)) as SubroutineInfo[])];
  }

  /**
   * Asks the gateway to stop (pynetwork's `close_gateway`). Resolves once it
   * acknowledged; the session ends with it.
   * @throws RemoteError with code SWARMNET_REMOTE_CLOSE_DISABLED when the gateway does not take remote close; TimeoutError, SessionEndedError, ClosedError as any call
   */
  async closeGateway(options?: CallOptions): Promise<void> {
    await this.#call(plainRequest("closeGateway", { type: "gateway.close" }), options);
  }

  /**
   * Closes the handler on the gateway (its pool slot is free when this
   * resolves) and this client's connection. Calls still queued fail at once
   * with ClosedError; the call in flight is let finish for at most the close
   * grace (the client's close timeout: the controller's `timeoutMs`, at most
   * 5 s), then fails with ClosedError; an open stream is ended (its consumer
   * gets ClosedError). A no-op when already closed.
   */
  async closeHandler(): Promise<void> {
    this.#queue.failAll(() => new ClosedError("client closed with this call still queued: never sent"));
    // An open stream would hold the queue for as long as nobody consumes it: closing ends it.
    if (this.#ref.getSnapshot().value === "streaming") this.#ref.send({ type: "close" });
    // The call in flight may have a deadline of weeks: wait for it only for the close grace.
    if (!(await settlesWithin(this.#queue.onIdle(), this.#ref.getSnapshot().context.closeTimeoutMs))) {
      if (this.#ref.getSnapshot().status === "active") this.#ref.send({ type: "close" }); // fails it with ClosedError
      this.#queue.failAll(() => new ClosedError("client closed while this call was in flight"), { inFlight: true });
    }
    await this.#queue.onIdle();
    if (this.#ref.getSnapshot().status === "active") {
      this.#ref.send({ type: "close" });
      await untilSnapshot(this.#ref, (s) => s.status !== "active").catch(() => undefined);
    }
    this.#onClosed(this);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.closeHandler();
  }

  /** Why no request can go out any more, or undefined while the client is live. */
  #closedError(): SwarmnetError | undefined {
    const snapshot = this.#ref.getSnapshot();
    return snapshot.status === "active" ? undefined : (snapshot.context.error ?? new ClosedError("client is closed"));
  }

  /**
   * What a stream reader or a transfer sink uses to talk for request `id`: control messages on this
   * client's connection (the id filled in when absent) and the end or failure of the request.
   */
  #sinkControl(id: number): SinkControl {
    return {
      send: (m, raw) => {
        if (this.#ref.getSnapshot().status !== "active") return;
        const envelope = encode(m["id"] === undefined ? { ...m, id } : m);
        this.#ref.getSnapshot().context.transport.send(raw === undefined ? [envelope] : [envelope, raw]);
      },
      finished: (callId) => this.#ref.send({ type: "call.finished", id: callId }),
      failed: (callId, error) => this.#ref.send({ type: "call.failed", id: callId, error }),
    };
  }

  #allocateId(): number {
    const id = this.#nextId;
    this.#nextId = id >= MAX_REQUEST_ID ? 1 : id + 1;
    return id;
  }

  #call(request: Request, options?: CallOptions): Promise<unknown> {
    const timeoutMs = options?.timeoutMs ?? this.#timeoutMs;
    const badTimeout = checkTimeout(request.method, timeoutMs);
    if (badTimeout !== undefined) return Promise.reject(badTimeout);
    // -0, lone surrogates, cycles: refused before anything is queued, instead of arriving changed.
    const problem = wireProblem(request);
    if (problem !== undefined) return Promise.reject(problem);
    // Only with SWARMNET_CALLSITES=1: by default a failure takes its awaiting caller's frames (atAwaiter).
    const callSite = captureCallSite();
    const settled = this.#queue.run<unknown>(
      ({ deadline, resolve, reject }) => {
        const closed = this.#closedError();
        if (closed) return reject(closed);
        const id = this.#allocateId();
        const frames = encodeRequest(request, id);
        if (frames instanceof InvalidArgumentError) return reject(frames);
        const call: PendingCall = {
          id,
          kind: request.kind,
          label: request.label,
          frames,
          timeoutMs,
          deadline,
          resolve,
          reject: (error: SwarmnetError) => reject(atCallSite(error, callSite)),
        };
        startCall(this.#ref, call);
      },
      { timeoutMs, what: request.kind, onFail: (error) => atCallSite(error as SwarmnetError, callSite) },
    );
    return callSite === undefined ? atAwaiter(settled) : settled;
  }
}
