/**
 * One client per handler: a DEALER connection, one request at a time.
 *
 *   connecting --welcome--> ready --call--> awaiting --answer | deadline--> ready
 *   connecting --refused | deadline--> failed (final)
 *   ready --close--> closing --session.closed | deadline--> closed (final)
 *   any --session.ended | transport error--> closed / failed
 *
 * The call in flight carries its own resolve/reject, so the Client class (and
 * any parent actor) just sends `call` and waits; every exit from `awaiting`
 * settles it exactly once.
 */
import { assign, fromCallback, setup, type ActorRefFrom, type SnapshotFrom } from "xstate";
import {
  ClosedError,
  ConnectionError,
  ConnectionRefusedError,
  HandshakeError,
  ErrorCode,
  MAX_TIMER_DELAY_MS,
  MessageTooLargeError,
  PROTOCOL_VERSION,
  ProtocolError,
  SessionEndedError,
  TimeoutError,
  clearLongTimeout,
  decode,
  endReasonOf,
  encode,
  errorFromWire,
  parseGatewayMessage,
  safeInterval,
  setLongTimeout,
  type LongTimeout,
  type FileCreditMessage,
  type FileErrorMessage,
  type FileDataMessage,
  type FileDoneMessage,
  type FileReadyMessage,
  type GatewayMessage,
  type StreamEndMessage,
  type StreamItemsMessage,
  type SwarmnetError,
} from "../protocol/index.js";
import type { AttemptFailure, ClientTransport, Frames } from "../transports/transport.js";

export type CallKind = "ping" | "batchGet" | "batchSend" | "closeGateway" | "stream" | "listFiles" | "files" | "inspect" | "listSubroutines";

/** Data-plane messages: they reach the sink of the call in flight, not the machine. */
export type DataMessage = StreamItemsMessage | StreamEndMessage | FileDataMessage | FileCreditMessage | FileErrorMessage | FileReadyMessage | FileDoneMessage;

const DATA_TYPES: ReadonlySet<GatewayMessage["type"]> = new Set([
  "stream.items",
  "stream.end",
  "file.data",
  "file.credit",
  "file.error",
  "file.ready",
  "file.done",
]);

/** Receives a stream's items (or a transfer's chunks) and end straight from the receive loop, without a machine transition each. */
export interface DataSink {
  readonly id: number;
  onData(message: DataMessage, raw: Uint8Array | undefined): void;
}

/** The sink of the call in flight, shared by the machine (which sets it) and the receive loop (which feeds it). */
export interface DataSlot {
  current: DataSink | undefined;
  /** The deadline timer of the call in flight. */
  deadline?: LongTimeout | undefined;
}

/** A request on its way; the machine settles it exactly once. */
export interface PendingCall {
  readonly id: number;
  readonly kind: CallKind;
  readonly frames: Frames;
  /** The call's deadline in ms, as the caller gave it (for messages). */
  readonly timeoutMs: number;
  /**
   * When the deadline passes (`performance.now()` ms), counted from when the call was made, time
   * queued behind other calls included; without it, `timeoutMs` from when the call goes out.
   */
  readonly deadline?: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: SwarmnetError) => void;
  /** For streams: where items go while the machine sits in `streaming`. */
  readonly sink?: DataSink;
  /** What the user asked, in their words, for error messages: "call mount_usage", "stream of sensor". */
  readonly label?: string;
}

export interface ClientMachineInput {
  /**
   * The wire. Wrap a raw transport in `DeliveryLink` (what `Controller` and
   * `swarmClientMachine` do): it numbers and replays the session's messages,
   * heartbeats, resumes after a reconnect and ends the session past the lease.
   */
  transport: ClientTransport;
  endpoint: string;
  connectTimeoutMs: number;
  /** Deadline of the goodbye when closing the handler. */
  closeTimeoutMs: number;
  /** Wait this long in the gateway's queue when its pool is full (0: refuse at once, as pynetwork did). */
  waitMs?: number;
  /**
   * Told at once when a connection attempt fails while connecting (refused:
   * ZeroMQ keeps retrying until the connect deadline). A failed handshake ends
   * the attempt instead, with HandshakeError.
   */
  onRetry?: (error: SwarmnetError) => void;
  /** Largest frame this client accepts and sends, in bytes (told to the gateway in the hello). */
  maxMessageSize?: number;
}

export interface ClientContext {
  readonly transport: ClientTransport;
  readonly endpoint: string;
  readonly connectTimeoutMs: number;
  readonly closeTimeoutMs: number;
  readonly waitMs: number;
  readonly onRetry: ((error: SwarmnetError) => void) | undefined;
  /** The last failed connection attempt while connecting: what a connect deadline reports. */
  readonly attemptError: SwarmnetError | undefined;
  /** The smaller of this client's and the gateway's largest frame (from the welcome): a request over it is refused before it is sent. */
  readonly maxMessageSize: number | undefined;
  readonly handlerId: number | undefined;
  readonly pending: PendingCall | undefined;
  /** Why the client ended, when it did not end by a clean close. */
  readonly error: SwarmnetError | undefined;
  /** Calls answered, for snapshots. */
  readonly completed: number;
  readonly slot: DataSlot;
}

export type ClientEvent =
  | { type: "call"; call: PendingCall }
  | { type: "close" }
  | { type: "wire"; message: GatewayMessage; raw: Uint8Array | undefined }
  | { type: "wire.invalid"; error: ProtocolError }
  /** The stream in flight is over (its sink saw the end); settle it and go back to ready. */
  | { type: "call.finished"; id: number }
  /** The stream in flight failed locally (e.g. no data within its deadline). */
  | { type: "call.failed"; id: number; error: SwarmnetError }
  /** The call in flight reached its deadline (a plain timer, cheaper per call than a delayed transition). */
  | { type: "call.deadline"; id: number }
  /** The socket monitor saw a connection attempt fail. */
  | { type: "attempt.failed"; failure: AttemptFailure }
  | { type: "transport.error"; error: Error }
  /**
   * The session is over, as something outside the machine found (e.g. the link layer: lease
   * run out, resume refused): the call in flight fails with `error`, the client ends in
   * `closed`, and the Client class fails every queued call with the same error.
   */
  | { type: "session.lost"; error: SwarmnetError };

const HELLO_ID = 0;

function send(context: ClientContext, message: object): void {
  context.transport.send([encode(message)]);
}

function answerOf(event: ClientEvent, pending: PendingCall): { ok: true; value: unknown } | { ok: false; error: SwarmnetError } | undefined {
  if (event.type !== "wire") return undefined;
  const m = event.message;
  if (m.type === "error" && m.id === 0) return { ok: false, error: errorFromWire(m.code, m.message, m.name, m.stack) };
  if (m.id !== pending.id) return undefined; // stale: an answer to a call that already timed out
  switch (m.type) {
    case "error":
      return { ok: false, error: errorFromWire(m.code, m.message, m.name, m.stack) };
    case "pong":
      return pending.kind === "ping" ? { ok: true, value: m.data } : undefined;
    case "rpc.result":
      return { ok: true, value: m.raw ? event.raw : m.value };
    case "gateway.closing":
      return { ok: true, value: undefined };
    case "file.listing":
      return pending.kind === "listFiles" ? { ok: true, value: m } : undefined;
    case "admin.snapshot.result":
      return pending.kind === "inspect" ? { ok: true, value: m.snapshot } : undefined;
    case "subroutine.listing":
      return pending.kind === "listSubroutines" ? { ok: true, value: m.subroutines } : undefined;
    default:
      return undefined;
  }
}

/** The largest frame of a request, when it is over the limit; else undefined. */
function oversize(frames: Frames, limit: number | undefined): number | undefined {
  if (limit === undefined) return undefined;
  let largest = 0;
  for (const frame of frames) largest = Math.max(largest, frame.length);
  return largest > limit ? largest : undefined;
}

function failPending(context: ClientContext, error: SwarmnetError): void {
  context.pending?.reject(error);
}

/** How a request in flight (a call or a stream) ends on a message from the gateway; shared by awaiting and streaming. */
const ANSWERS = {
  wire: [
    // Whatever request the gateway's "no session" answers (an rpc.cancel of a call that timed out
    // included), the call in flight can no longer be served: it fails now, and the queue with it.
    { guard: "sessionGone", target: "closed", actions: ["noteSessionGone", "failOnSessionGone", "clearPending"] },
    { guard: "answersPending", target: "ready", actions: ["settlePending", "clearPending"] },
  ],
  "wire.invalid": { target: "ready", actions: ["failOnInvalid", "clearPending"] },
} as const;

export const clientMachine = setup({
  types: {
    input: {} as ClientMachineInput,
    context: {} as ClientContext,
    events: {} as ClientEvent,
  },
  actors: {
    wire: fromCallback<ClientEvent, { transport: ClientTransport; slot: DataSlot }>(({ input, sendBack }) => {
      const { transport, slot } = input;
      // Heartbeats and the link (down past the lease, resume, replay) are the delivery layer's
      // (actors/delivery-link.ts): it reports a session it gave up on as `session.ended`.
      transport.start({
        onMessage(frames) {
          const envelope = frames[0];
          let message: GatewayMessage;
          try {
            if (envelope === undefined || frames.length > 2) throw new ProtocolError(`bad frame count ${frames.length}`);
            message = parseGatewayMessage(decode(envelope), frames.length === 2);
          } catch (err) {
            sendBack({ type: "wire.invalid", error: err as ProtocolError });
            return;
          }
          if (DATA_TYPES.has(message.type) && slot.current?.id === message.id) {
            slot.current.onData(message as DataMessage, frames[1]);
            return;
          }
          sendBack({ type: "wire", message, raw: frames[1] });
        },
        onError(error) {
          sendBack({ type: "transport.error", error });
        },
        onAttemptFailed(failure) {
          sendBack({ type: "attempt.failed", failure });
        },
      });
      return () => transport.close();
    }),
  },
  // Capped at what Node's setTimeout honours: under a clock that does not chain timers (a user's own
  // actor system), a longer delay would fire at once; the Controller's clock (longClock) needs no cap.
  delays: {
    connectTimeout: ({ context }) => Math.min(MAX_TIMER_DELAY_MS, context.connectTimeoutMs + context.waitMs),
    closeTimeout: ({ context }) => Math.min(MAX_TIMER_DELAY_MS, context.closeTimeoutMs),
  },
  guards: {
    /** The gateway says this connection has no session (any more): nothing more can be served. */
    sessionGone: ({ event }) =>
      event.type === "wire" &&
      event.message.type === "error" &&
      (event.message.code === ErrorCode.SESSION_ENDED ||
        event.message.code === ErrorCode.LEASE_EXPIRED ||
        event.message.code === ErrorCode.GATEWAY_STOPPING),
    answersPending: ({ context, event }) => context.pending !== undefined && answerOf(event, context.pending) !== undefined,
  },
  actions: {
    settlePending: ({ context, event }) => {
      const pending = context.pending;
      if (!pending) return;
      const answer = answerOf(event, pending);
      if (answer === undefined) return;
      if (answer.ok) pending.resolve(answer.value);
      else pending.reject(answer.error);
    },
    /** The gateway's words ("no session for this connection") become what the user can do about it. */
    explainSessionGone: assign({
      error: ({ context, event }) => {
        if (event.type !== "wire" || event.message.type !== "error") return context.error;
        const reason =
          event.message.code === ErrorCode.SESSION_ENDED
            ? "the gateway no longer has a session for this client: it restarted, or ended the session"
            : `the gateway ended this client's session (${event.message.message})`;
        return new SessionEndedError(`${reason}. This client is closed: get a new one (controller.getClient()).`, {
          cause: errorFromWire(event.message.code, event.message.message),
        });
      },
    }),
    /** The gateway's words ("no session for this connection") become what the user can do about it. */
    noteSessionGone: assign({
      error: ({ event }) => {
        if (event.type !== "wire" || event.message.type !== "error") return undefined;
        const reason =
          event.message.code === ErrorCode.SESSION_ENDED
            ? "the gateway no longer has a session for this client: it restarted, or ended the session"
            : `the gateway ended this client's session (${event.message.code}: ${event.message.message})`;
        return new SessionEndedError(`${reason}. This client is closed: get a new one (controller.getClient()).`, {
          cause: errorFromWire(event.message.code, event.message.message),
        });
      },
    }),
    failOnSessionGone: ({ context }) => {
      if (context.error) failPending(context, context.error);
    },
    failOnInvalid: ({ context, event }) => {
      if (event.type !== "wire.invalid") return;
      // A local failure of the request in flight: the gateway still thinks it runs (a stream
      // keeps its handler in busy.streaming), so tell it to drop it, as on a deadline.
      if (context.pending !== undefined) send(context, { type: "rpc.cancel", id: context.pending.id });
      failPending(context, event.error);
    },
    clearPending: assign(({ context }) => {
      // The deadline timer lives outside the context (a handle, not state): stop it with the call.
      clearLongTimeout(context.slot.deadline);
      context.slot.deadline = undefined;
      return { pending: undefined, completed: context.completed + 1 };
    }),
  },
}).createMachine({
  id: "client",
  context: ({ input }) => ({
    transport: input.transport,
    endpoint: input.endpoint,
    connectTimeoutMs: input.connectTimeoutMs,
    closeTimeoutMs: input.closeTimeoutMs,
    waitMs: input.waitMs ?? 0,
    onRetry: input.onRetry,
    attemptError: undefined,
    maxMessageSize: input.maxMessageSize,
    handlerId: undefined,
    pending: undefined,
    error: undefined,
    completed: 0,
    slot: { current: undefined },
  }),
  invoke: { id: "wire", src: "wire", input: ({ context }) => ({ transport: context.transport, slot: context.slot }) },
  initial: "connecting",
  on: {
    call: {
      actions: ({ context, event }) =>
        event.call.reject(
          context.error ?? new ClosedError(`client is not ready (handler ${context.handlerId ?? "none"})`),
        ),
    },
    // The session is over: the gateway ended it (handler crashed past its budget, gateway stopping,
    // lease expired), or the delivery layer gave up on it (link down past the lease, resume refused,
    // gateway restarted). One error, with the reason, for everything in flight.
    wire: {
      guard: ({ event }) => event.message.type === "session.ended",
      target: ".closed",
      actions: assign({
        error: ({ event }) =>
          event.message.type === "session.ended"
            ? new SessionEndedError(`session ended (${event.message.code}): ${event.message.message}. This client is closed: get a new one (controller.getClient()).`, {
                reason: endReasonOf(event.message.code, event.message.reason),
              })
            : undefined,
      }),
    },
    "session.lost": {
      target: ".closed",
      actions: assign({ error: ({ event }) => event.error }),
    },
    "transport.error": {
      target: ".failed",
      actions: assign({
        error: ({ context, event }) =>
          new ConnectionError(`connection to gateway ${context.endpoint} failed: ${event.error.message}`, { cause: event.error }),
      }),
    },
  },
  states: {
    connecting: {
      entry: ({ context }) =>
        send(context, {
          type: "hello",
          id: HELLO_ID,
          v: PROTOCOL_VERSION,
          ...(context.waitMs > 0 ? { waitMs: context.waitMs } : {}),
          ...(context.maxMessageSize === undefined ? {} : { maxMessageSize: context.maxMessageSize }),
        }),
      on: {
        wire: [
          {
            guard: ({ event }) => event.message.type === "welcome",
            target: "ready",
            actions: assign({
              handlerId: ({ event }) => (event.message.type === "welcome" ? event.message.handlerId : undefined),
              maxMessageSize: ({ context, event }) => {
                const theirs = event.message.type === "welcome" ? event.message.maxMessageSize : undefined;
                if (theirs === undefined) return context.maxMessageSize;
                return context.maxMessageSize === undefined ? theirs : Math.min(theirs, context.maxMessageSize);
              },
            }),
          },
          {
            guard: ({ event }) => event.message.type === "refused",
            target: "failed",
            actions: assign({
              error: ({ event }) =>
                event.message.type === "refused"
                  ? errorFromWire(event.message.code, event.message.message)
                  : undefined,
            }),
          },
        ],
        close: "closed",
        "attempt.failed": [
          {
            description: "A failed handshake will fail again: report it now.",
            guard: ({ event }) => event.failure.kind === "handshake",
            target: "failed",
            actions: assign({
              error: ({ context, event }) =>
                new HandshakeError(
                  `CURVE/ZMTP handshake with gateway ${context.endpoint} failed: ${event.failure.detail}. ` +
                    "Check the keys: this client's key pair must be in the gateway's authorized keys, and serverPublicKey (--server-key) must be the gateway's public key.",
                ),
            }),
          },
          {
            description: "Nothing accepted the connection: say so at once and let ZeroMQ retry until the deadline.",
            actions: [
              assign({
                attemptError: ({ context }) =>
                  new ConnectionRefusedError(
                    `connection refused at ${context.endpoint}: nothing listens there (is the gateway running, on this host and port?); retried for ${context.connectTimeoutMs} ms`,
                  ),
              }),
              ({ context }) => {
                if (context.attemptError !== undefined) context.onRetry?.(context.attemptError);
              },
            ],
          },
        ],
      },
      after: {
        connectTimeout: {
          target: "failed",
          actions: assign({
            error: ({ context }) =>
              context.attemptError ??
              new TimeoutError(
                `no answer from gateway ${context.endpoint} within ${context.connectTimeoutMs} ms (an unreachable host, a firewall dropping packets, or not a swarmnet gateway?)`,
              ),
          }),
        },
      },
    },
    ready: {
      description: "Nothing in flight: the transport may stop holding the event loop, so a script that forgot close() exits.",
      entry: ({ context }) => context.transport.idle?.(true),
      exit: ({ context }) => context.transport.idle?.(false),
      on: {
        call: [
          {
            // Sent, ZeroMQ would drop the connection at the gateway: refuse it here, the client stays usable.
            guard: ({ context, event }) => oversize(event.call.frames, context.maxMessageSize) !== undefined,
            actions: ({ context, event }) =>
              event.call.reject(
                new MessageTooLargeError(
                  `${event.call.kind} request of ${oversize(event.call.frames, context.maxMessageSize)} bytes is over the maxMessageSize of ${context.maxMessageSize} bytes: not sent`,
                ),
              ),
          },
          {
            // Its deadline passed while it waited its turn: it fails without going out.
            guard: ({ event }) => event.call.deadline !== undefined && event.call.deadline <= performance.now(),
            actions: ({ context, event }) =>
              event.call.reject(
                new TimeoutError(`no answer to ${event.call.kind} from gateway ${context.endpoint} within ${event.call.timeoutMs} ms (spent waiting its turn): never sent`),
              ),
          },
          {
            guard: ({ event }) => event.call.sink !== undefined,
            target: "streaming",
            actions: [
              assign({ pending: ({ event }) => event.call }),
              ({ context, event }) => {
                context.slot.current = event.call.sink;
                context.transport.send(event.call.frames);
              },
            ],
          },
          {
            target: "awaiting",
            actions: [
              assign({ pending: ({ event }) => event.call }),
              ({ context, event, self }) => {
                const { id, timeoutMs, deadline } = event.call;
                context.slot.deadline = setLongTimeout(
                  () => {
                    if (self.getSnapshot().status === "active") self.send({ type: "call.deadline", id });
                  },
                  deadline === undefined ? timeoutMs : deadline - performance.now(),
                );
                context.transport.send(event.call.frames);
              },
            ],
          },
        ],
        close: "closing",
      },
    },
    // A stream: items go to the sink directly; the machine waits for its end or failure.
    streaming: {
      exit: ({ context }) => {
        context.slot.current = undefined;
      },
      on: {
        "call.finished": {
          guard: ({ context, event }) => context.pending?.id === event.id,
          target: "ready",
          actions: [({ context }) => context.pending?.resolve(undefined), "clearPending"],
        },
        "call.failed": {
          guard: ({ context, event }) => context.pending?.id === event.id,
          target: "ready",
          actions: [
            // We gave up on it (no data within the deadline, a local failure): the handler drops it
            // whatever its job is doing (a generator that never yields, a finally that never ends).
            ({ context, event }) => send(context, { type: "rpc.cancel", id: event.id }),
            ({ context, event }) => context.pending?.reject(event.error),
            "clearPending",
          ],
        },
        ...ANSWERS,
        close: {
          target: "closing",
          actions: [({ context }) => failPending(context, new ClosedError("client closed while a stream was open")), "clearPending"],
        },
      },
    },
    awaiting: {
      on: {
        ...ANSWERS,
        close: {
          target: "closing",
          actions: [({ context }) => failPending(context, new ClosedError("client closed while a call was in flight")), "clearPending"],
        },
        "call.deadline": {
          guard: ({ context, event }) => context.pending?.id === event.id,
          target: "ready",
          actions: [
            // Tell the handler to drop the call, so the next one is not refused as busy.
            ({ context }) => context.pending && send(context, { type: "rpc.cancel", id: context.pending.id }),
            ({ context }) =>
              failPending(
                context,
                new TimeoutError(
                  `no answer to ${context.pending?.label ?? context.pending?.kind ?? "call"} from gateway ${context.endpoint} within ${context.pending?.timeoutMs ?? 0} ms (timeoutMs)`,
                ),
              ),
            "clearPending",
          ],
        },
      },
    },
    closing: {
      entry: ({ context }) => send(context, { type: "session.close", id: HELLO_ID }),
      on: {
        wire: { guard: ({ event }) => event.message.type === "session.closed", target: "closed" },
      },
      after: { closeTimeout: "closed" },
    },
    // Every way out stops the deadline timer too: a pending timer would keep Node alive after close().
    closed: {
      type: "final",
      entry: [({ context }) => failPending(context, context.error ?? new ClosedError("client closed")), "clearPending"],
    },
    failed: {
      type: "final",
      entry: [({ context }) => failPending(context, context.error ?? new ConnectionError("client failed")), "clearPending"],
    },
  },
});

export type ClientActorRef = ActorRefFrom<typeof clientMachine>;
export type ClientSnapshot = SnapshotFrom<typeof clientMachine>;
