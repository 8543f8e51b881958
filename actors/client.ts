/**
 * One client per handler: a DEALER connection, one request at a time.
 *
 *   connecting --gateway.welcome--> ready --call (stream, transfer)--> streaming --call.finished | call.failed | gateway.answer--> ready
 *   ready --call (ping, batch, listing)--> ready   (data plane: no transition per call)
 *   connecting --gateway.refused | attempt.failed (handshake) | deadline--> failed (final)
 *   ready | streaming --close--> closing --gateway.closed | deadline--> closed (final)
 *   any --gateway.sessionEnded | session.lost--> closed; ready | streaming --gateway.noSession--> closed
 *   any --transport.error--> failed
 *
 * The request in flight lives in the context's `slot` (one at a time) and carries
 * its own resolve/reject. A plain call (ping, batch get/send, a listing) stays on
 * the data plane: `startCall` sends it and the receive loop settles it from the
 * answer, with no machine transition on either end. The machine owns the
 * lifecycle: anything that ends the session, a malformed answer, `close`, or a
 * stream or transfer (which has a state of its own) goes through it, and every
 * way out of a state with a request in flight settles it exactly once.
 *
 * The receive loop names what the gateway said (`eventFromGateway`): `gateway.welcome`,
 * `gateway.refused`, `gateway.answer` (an answer, or a stale one, to a request),
 * `gateway.noSession` (an error saying this connection has no session),
 * `gateway.sessionEnded` and `gateway.closed` (the goodbye to our `session.close`).
 */
import { assertEvent, assign, fromCallback, setup, type ActorRefFrom, type SnapshotFrom } from "xstate";
import {
  BusyError,
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
  setLongTimeout,
  type LongTimeout,
  type FileCreditMessage,
  type FileErrorMessage,
  type FileDataMessage,
  type FileDoneMessage,
  type FileReadyMessage,
  type ErrorMessage,
  type GatewayMessage,
  type RefusedMessage,
  type SessionEndedMessage,
  type StreamEndMessage,
  type StreamItemsMessage,
  type SwarmnetError,
  type WelcomeMessage,
} from "../protocol/index.js";
import type { AttemptFailure, ClientTransport, Frames } from "../transports/transport.js";
import type { RequestKind } from "./request.js";

/** @deprecated One word per idea: the client and the handler share `RequestKind` (actors/request.ts). */
export type CallKind = RequestKind;

/** Data-plane messages: they reach the sink of the call in flight, not the machine. */
export type DataMessage =
  StreamItemsMessage | StreamEndMessage | FileDataMessage | FileCreditMessage | FileErrorMessage | FileReadyMessage | FileDoneMessage;

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

/**
 * The request in flight, shared by the machine, `startCall` (which fill it) and
 * the receive loop (which feeds a sink or settles a call). Mutable on purpose:
 * a call on the data plane changes it without a machine transition.
 */
export interface DataSlot {
  /** The request in flight (a call, a stream or a transfer), until it settles. */
  call: PendingCall | undefined;
  /** Where a stream's items or a transfer's chunks go, while one runs. */
  sink: DataSink | undefined;
  /** The deadline timer of a call in flight. */
  deadline: LongTimeout | undefined;
  /** Requests settled (answered, failed or timed out), for snapshots. */
  completed: number;
}

/** A request on its way; the machine settles it exactly once. */
export interface PendingCall {
  readonly id: number;
  readonly kind: RequestKind;
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
  /** Why the client ended, when it did not end by a clean close. */
  readonly error: SwarmnetError | undefined;
  /** The request in flight (`slot.call`) and its sink, deadline timer and the count of requests settled. */
  readonly slot: DataSlot;
}

/** What the gateway said, named by the receive loop (`eventFromGateway`). */
export type FromGatewayEvent =
  /** The gateway accepted the hello: a handler serves this client now. */
  | { type: "gateway.welcome"; message: WelcomeMessage }
  /** The gateway refused the hello (pool full, wrong version, ...). */
  | { type: "gateway.refused"; message: RefusedMessage }
  /** An answer to a request (the one in flight, or a stale one) that the data plane did not settle. */
  | { type: "gateway.answer"; message: GatewayMessage; raw: Uint8Array | undefined }
  /** An error saying this connection has no session (any more): SESSION_ENDED, LEASE_EXPIRED or GATEWAY_STOPPING. */
  | { type: "gateway.noSession"; message: ErrorMessage }
  /** The gateway ended the session (handler crashed past its budget, gateway stopping, lease expired). */
  | { type: "gateway.sessionEnded"; message: SessionEndedMessage }
  /** The gateway's goodbye to our `session.close`. */
  | { type: "gateway.closed" };

export type ClientEvent =
  | { type: "call"; call: PendingCall }
  | { type: "close" }
  | FromGatewayEvent
  /** A message that failed validation (or a bad frame count): the request in flight fails with `error`. */
  | { type: "wire.invalid"; error: ProtocolError }
  /** The stream in flight is over (its sink saw the end); settle it and go back to ready. */
  | { type: "call.finished"; id: number }
  /** The stream in flight failed locally (e.g. no data within its deadline). */
  | { type: "call.failed"; id: number; error: SwarmnetError }
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

type Answer = { ok: true; value: unknown } | { ok: false; error: SwarmnetError };

/** How `message` answers `call`, or undefined when it is not its answer (a stale one, or not an answer at all). */
function answerOf(message: GatewayMessage, raw: Uint8Array | undefined, call: PendingCall): Answer | undefined {
  if (message.type === "error" && message.id === 0)
    return { ok: false, error: errorFromWire(message.code, message.message, message.name, message.stack) };
  if (message.id !== call.id) return undefined; // stale: an answer to a call that already timed out
  switch (message.type) {
    case "error":
      return { ok: false, error: errorFromWire(message.code, message.message, message.name, message.stack) };
    case "pong":
      return call.kind === "ping" ? { ok: true, value: message.data } : undefined;
    case "rpc.result":
      return { ok: true, value: message.raw ? raw : message.value };
    case "gateway.closing":
      return { ok: true, value: undefined };
    case "file.listing":
      return call.kind === "listFiles" ? { ok: true, value: message } : undefined;
    case "admin.snapshot.result":
      return call.kind === "inspect" ? { ok: true, value: message.snapshot } : undefined;
    case "subroutine.listing":
      return call.kind === "listSubroutines" ? { ok: true, value: message.subroutines } : undefined;
    default:
      return undefined;
  }
}

/** The gateway says this connection has no session (any more): nothing more can be served. */
function isSessionGone(message: GatewayMessage): message is ErrorMessage {
  return (
    message.type === "error" &&
    (message.code === ErrorCode.SESSION_ENDED || message.code === ErrorCode.LEASE_EXPIRED || message.code === ErrorCode.GATEWAY_STOPPING)
  );
}

/** What `message` means to the machine: the event the receive loop sends it. */
export function eventFromGateway(message: GatewayMessage, raw: Uint8Array | undefined): FromGatewayEvent {
  switch (message.type) {
    case "welcome":
      return { type: "gateway.welcome", message };
    case "refused":
      return { type: "gateway.refused", message };
    case "session.ended":
      return { type: "gateway.sessionEnded", message };
    case "session.closed":
      return { type: "gateway.closed" };
    default:
      return isSessionGone(message) ? { type: "gateway.noSession", message } : { type: "gateway.answer", message, raw };
  }
}

/** The largest frame of a request, when it is over the limit; else undefined. */
function oversize(frames: Frames, limit: number | undefined): number | undefined {
  if (limit === undefined) return undefined;
  let largest = 0;
  for (const frame of frames) largest = Math.max(largest, frame.length);
  return largest > limit ? largest : undefined;
}

/** Why `call` cannot go out now (over the frame limit, or its deadline passed while it waited its turn), or undefined. */
function refusalOf(context: ClientContext, call: PendingCall): SwarmnetError | undefined {
  // Sent, ZeroMQ would drop the connection at the gateway: refuse it here, the client stays usable.
  const largest = oversize(call.frames, context.maxMessageSize);
  if (largest !== undefined) {
    return new MessageTooLargeError(
      `${call.kind} request of ${largest} bytes is over the maxMessageSize of ${context.maxMessageSize} bytes: not sent`,
    );
  }
  if (call.deadline !== undefined && call.deadline <= performance.now()) {
    return new TimeoutError(
      `no answer to ${call.kind} from gateway ${context.endpoint} within ${call.timeoutMs} ms (spent waiting its turn): never sent`,
    );
  }
  return undefined;
}

/** Frees the slot of `call` (its deadline timer stopped, counted as settled); false when `call` is no longer the one in flight. */
function release(slot: DataSlot, call: PendingCall): boolean {
  if (slot.call !== call) return false;
  clearLongTimeout(slot.deadline);
  slot.deadline = undefined;
  slot.call = undefined;
  slot.completed++;
  return true;
}

/** Fails the request in flight, if any, with `error` (exactly once: a settled request is no longer in the slot). */
export function failInFlight(slot: DataSlot, error: SwarmnetError): void {
  const call = slot.call;
  if (call !== undefined && release(slot, call)) call.reject(error);
}

/**
 * Sends a plain call (no sink) from `ready` and arms its deadline: the data
 * plane. Its answer is settled by the receive loop (or, for what ends the
 * session, by the machine); the deadline by its own timer. No transition.
 */
function sendCall(context: ClientContext, call: PendingCall): void {
  const refusal = refusalOf(context, call);
  if (refusal !== undefined) {
    call.reject(refusal);
    return;
  }
  const slot = context.slot;
  slot.call = call;
  slot.deadline = setLongTimeout(
    () => {
      if (!release(slot, call)) return;
      // Tell the handler to drop the call, so the next one is not refused as busy.
      send(context, { type: "rpc.cancel", id: call.id });
      context.transport.idle?.(true);
      call.reject(
        new TimeoutError(
          `no answer to ${call.label ?? call.kind} from gateway ${context.endpoint} within ${call.timeoutMs} ms (timeoutMs)`,
        ),
      );
    },
    call.deadline === undefined ? call.timeoutMs : call.deadline - performance.now(),
  );
  context.transport.idle?.(false);
  context.transport.send(call.frames);
}

/**
 * Starts a request on client `ref`. A plain call on a ready client with nothing in
 * flight goes out on the data plane (no machine transition); anything else (a
 * stream, a transfer, a client not ready) is the machine's `call` event, which
 * starts it or rejects it with the reason.
 */
export function startCall(ref: ClientActorRef, call: PendingCall): void {
  const snapshot = ref.getSnapshot();
  if (call.sink === undefined && snapshot.status === "active" && snapshot.value === "ready" && snapshot.context.slot.call === undefined) {
    sendCall(snapshot.context, call);
    return;
  }
  ref.send({ type: "call", call });
}

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
          const call = slot.call;
          if (call !== undefined && message.id === call.id) {
            if (slot.sink !== undefined) {
              // A stream's items or a transfer's chunks: straight to its sink.
              if (DATA_TYPES.has(message.type)) {
                slot.sink.onData(message as DataMessage, frames[1]);
                return;
              }
            } else if (!isSessionGone(message)) {
              // The answer to a plain call: settled here, on the data plane (the machine stays in ready).
              const answer = answerOf(message, frames[1], call);
              if (answer !== undefined && release(slot, call)) {
                transport.idle?.(true);
                if (answer.ok) call.resolve(answer.value);
                else call.reject(answer.error);
                return;
              }
            }
          }
          sendBack(eventFromGateway(message, frames[1]));
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
    answersInFlight: ({ context, event }) => {
      assertEvent(event, "gateway.answer");
      return context.slot.call !== undefined && answerOf(event.message, event.raw, context.slot.call) !== undefined;
    },
    inFlight: ({ context }) => context.slot.call !== undefined,
    isStream: ({ event }) => {
      assertEvent(event, "call");
      return event.call.sink !== undefined;
    },
    refused: ({ context, event }) => {
      assertEvent(event, "call");
      return refusalOf(context, event.call) !== undefined;
    },
    isCurrent: ({ context, event }) => {
      assertEvent(event, ["call.finished", "call.failed"]);
      return context.slot.call?.id === event.id;
    },
  },
  actions: {
    settleInFlight: ({ context, event }) => {
      assertEvent(event, "gateway.answer");
      const call = context.slot.call;
      if (call === undefined) return;
      const answer = answerOf(event.message, event.raw, call);
      if (answer === undefined || !release(context.slot, call)) return;
      if (answer.ok) call.resolve(answer.value);
      else call.reject(answer.error);
    },
    /** The gateway's words ("no session for this connection") become what the user can do about it. */
    noteSessionGone: assign({
      error: ({ event }) => {
        assertEvent(event, "gateway.noSession");
        const reason =
          event.message.code === ErrorCode.SESSION_ENDED
            ? "the gateway no longer has a session for this client: it restarted, or ended the session"
            : `the gateway ended this client's session (${event.message.code}: ${event.message.message})`;
        return new SessionEndedError(`${reason}. This client is closed: get a new one (controller.getClient()).`, {
          cause: errorFromWire(event.message.code, event.message.message),
        });
      },
    }),
    failOnInvalid: ({ context, event }) => {
      assertEvent(event, "wire.invalid");
      if (context.slot.call === undefined) return;
      // A local failure of the request in flight: the gateway still thinks it runs (a stream
      // keeps its handler in busy.streaming), so tell it to drop it, as on a deadline.
      send(context, { type: "rpc.cancel", id: context.slot.call.id });
      failInFlight(context.slot, event.error);
    },
    idleWhenFree: ({ context }) => context.transport.idle?.(context.slot.call === undefined),
    rejectRefused: ({ context, event }) => {
      assertEvent(event, "call");
      const refusal = refusalOf(context, event.call);
      if (refusal !== undefined) event.call.reject(refusal);
    },
    rejectBusy: ({ context, event }) => {
      assertEvent(event, "call");
      event.call.reject(new BusyError(`request ${context.slot.call?.id ?? "?"} is in flight on this client: one request at a time`));
    },
    sendCall: ({ context, event }) => {
      assertEvent(event, "call");
      sendCall(context, event.call);
    },
    openStream: ({ context, event }) => {
      assertEvent(event, "call");
      if (event.call.sink === undefined) return;
      context.slot.call = event.call;
      context.slot.sink = event.call.sink;
      context.transport.send(event.call.frames);
    },
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
    error: undefined,
    slot: { call: undefined, sink: undefined, deadline: undefined, completed: 0 },
  }),
  invoke: { id: "wire", src: "wire", input: ({ context }) => ({ transport: context.transport, slot: context.slot }) },
  initial: "connecting",
  on: {
    call: {
      actions: ({ context, event }) =>
        event.call.reject(context.error ?? new ClosedError(`client is not ready (handler ${context.handlerId ?? "none"})`)),
    },
    // The session is over: the gateway ended it (handler crashed past its budget, gateway stopping,
    // lease expired), or the delivery layer gave up on it (link down past the lease, resume refused,
    // gateway restarted). One error, with the reason, for everything in flight.
    "gateway.sessionEnded": {
      target: ".closed",
      actions: assign({
        error: ({ event }) =>
          new SessionEndedError(
            `session ended (${event.message.code}): ${event.message.message}. This client is closed: get a new one (controller.getClient()).`,
            {
              reason: endReasonOf(event.message.code, event.message.reason),
            },
          ),
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
      description:
        "The hello is out; waiting for the gateway's welcome or refusal, at most connectTimeoutMs (+ waitMs in a full pool's queue). " +
        "A refused TCP connection is told to onRetry while ZeroMQ retries; a failed CURVE handshake fails at once.",
      entry: ({ context }) =>
        send(context, {
          type: "hello",
          id: HELLO_ID,
          v: PROTOCOL_VERSION,
          ...(context.waitMs > 0 ? { waitMs: context.waitMs } : {}),
          ...(context.maxMessageSize === undefined ? {} : { maxMessageSize: context.maxMessageSize }),
        }),
      on: {
        "gateway.welcome": {
          target: "ready",
          actions: assign({
            handlerId: ({ event }) => event.message.handlerId,
            maxMessageSize: ({ context, event }) => {
              const theirs = event.message.maxMessageSize;
              if (theirs === undefined) return context.maxMessageSize;
              return context.maxMessageSize === undefined ? theirs : Math.min(theirs, context.maxMessageSize);
            },
          }),
        },
        "gateway.refused": {
          target: "failed",
          actions: assign({ error: ({ event }) => errorFromWire(event.message.code, event.message.message) }),
        },
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
      description:
        "Serving plain calls (ping, batch get/send, listings) one at a time on the data plane: `slot.call` is the one in flight, " +
        "settled by the receive loop without a transition. With nothing in flight the transport may stop holding the event loop, " +
        "so a script that forgot close() exits.",
      entry: ({ context }) => context.transport.idle?.(context.slot.call === undefined),
      exit: ({ context }) => context.transport.idle?.(false),
      on: {
        call: [
          { guard: "inFlight", actions: "rejectBusy" },
          { guard: "refused", actions: "rejectRefused" },
          { guard: "isStream", target: "streaming", actions: "openStream" },
          { actions: "sendCall" },
        ],
        // Whatever request the gateway's "no session" answers (an rpc.cancel of a call that timed out
        // included), the request in flight can no longer be served: it fails now, and the queue with it.
        "gateway.noSession": { guard: "inFlight", target: "closed", actions: "noteSessionGone" },
        // Settled by the machine, not the receive loop (an error without an id, a malformed answer):
        // the transport may stop holding the event loop again, as after a data-plane answer.
        "gateway.answer": { guard: "answersInFlight", actions: ["settleInFlight", "idleWhenFree"] },
        "wire.invalid": { actions: ["failOnInvalid", "idleWhenFree"] },
        close: {
          target: "closing",
          actions: ({ context }) => failInFlight(context.slot, new ClosedError("client closed while a call was in flight")),
        },
      },
    },
    streaming: {
      description:
        "A stream or a file transfer: its items or chunks go to its sink straight from the receive loop; the machine waits for its end or failure.",
      exit: ({ context }) => {
        context.slot.sink = undefined;
      },
      on: {
        "call.finished": {
          guard: "isCurrent",
          target: "ready",
          actions: ({ context }) => {
            const call = context.slot.call;
            if (call !== undefined && release(context.slot, call)) call.resolve(undefined);
          },
        },
        "call.failed": {
          guard: "isCurrent",
          target: "ready",
          actions: [
            // We gave up on it (no data within the deadline, a local failure): the handler drops it
            // whatever its job is doing (a generator that never yields, a finally that never ends).
            ({ context, event }) => send(context, { type: "rpc.cancel", id: event.id }),
            ({ context, event }) => failInFlight(context.slot, event.error),
          ],
        },
        "gateway.noSession": { target: "closed", actions: "noteSessionGone" },
        "gateway.answer": { guard: "answersInFlight", target: "ready", actions: "settleInFlight" },
        "wire.invalid": { target: "ready", actions: "failOnInvalid" },
        close: {
          target: "closing",
          actions: ({ context }) => failInFlight(context.slot, new ClosedError("client closed while a stream was open")),
        },
      },
    },
    closing: {
      description: "The goodbye (session.close) is out: closed on the gateway's session.closed, or after closeTimeoutMs without it.",
      entry: ({ context }) => send(context, { type: "session.close", id: HELLO_ID }),
      on: {
        "gateway.closed": "closed",
      },
      after: { closeTimeout: "closed" },
    },
    // Every way out fails what is in flight and stops its deadline timer: a pending timer would keep Node alive after close().
    closed: {
      description: "Closed by us, or the session ended (context.error says why): the request in flight, if any, failed.",
      type: "final",
      entry: ({ context }) => failInFlight(context.slot, context.error ?? new ClosedError("client closed")),
    },
    failed: {
      description: "Never connected (refused, handshake failed, no answer) or the connection broke: context.error says why.",
      type: "final",
      entry: ({ context }) => failInFlight(context.slot, context.error ?? new ConnectionError("client failed")),
    },
  },
});

export type ClientActorRef = ActorRefFrom<typeof clientMachine>;
export type ClientSnapshot = SnapshotFrom<typeof clientMachine>;
