/**
 * The composable client: swarmnet's client as an actor for your own xstate
 * machines. Invoke or spawn it with an endpoint (or a Controller), send it
 * typed commands, and get results and stream items back as events: sent to
 * the parent (`sendParent`) and emitted for observers (`actor.on(...)`).
 *
 *   session.connecting --welcome--> session.ready <-> session.awaiting | session.streaming
 *   session.* --close--> session.closing --> closed (final)
 *   session.* --the connection ends any other way--> failed (error status)
 *
 * A failed connection (pool full, no answer, connection lost, session ended
 * by the gateway) is an actor error: the parent gets
 * `xstate.error.actor.<id>` and decides whether to restart. Stopping the
 * actor closes its handler on the gateway, so the pool slot comes back.
 *
 * The tree under it is `<your id>` -> `client` (actors/client.ts) -> `wire`,
 * plus `pump` while a stream is open; one `inspect` callback sees it all.
 */
import {
  Actor,
  assertEvent,
  assign,
  enqueueActions,
  fromCallback,
  fromPromise,
  raise,
  setup,
  type ActorRefFrom,
  type AnyActorRef,
  type SnapshotFrom,
} from "xstate";
import { clientMachine, type ClientActorRef, type PendingCall } from "../actors/client.js";
import {
  batchGetRequest,
  batchSendRequest,
  checkTimeout,
  encodeRequest,
  pingRequest,
  streamRequest,
  wireProblem,
  type Request,
} from "../actors/request.js";
import {
  AbortedError,
  ClosedError,
  ConnectionError,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_MESSAGE_SIZE_BYTES,
  DEFAULT_STREAM_WINDOW,
  DEFAULT_STREAM_WINDOW_BYTES,
  DEFAULT_TIMEOUT_MS,
  ErrorCode,
  InvalidArgumentError,
  MAX_STREAM_WINDOW,
  SwarmnetError,
  describeThrown,
  encode,
  type Kwargs,
} from "../protocol/index.js";
import type { ClientCurve, TransportFactory } from "../transports/transport.js";
import { zmqTransport } from "../transports/zmq.js";
import type { ConnectPlan, Controller } from "./controller.js";
import { normalizeEndpoint } from "./endpoint.js";
import { SessionLink } from "./session-link.js";
import { DeliveryLink } from "../actors/delivery-link.js";
import { StreamReader, type StreamControl } from "./stream.js";

/** Names a request in the answers to it; yours, or assigned (1, 2, ...) when a command has none. */
export type RequestId = string | number;

export interface SwarmClientOptions {
  /** Deadline of each call, and longest wait for a stream's next item, in ms. @default 10000 (the controller's, with `controller`) */
  timeoutMs?: number;
  /** Longest wait for the gateway's welcome, per gateway tried. @default 5000 (the controller's, with `controller`) */
  connectTimeoutMs?: number;
  /** Wait up to this long in a full gateway's queue for a slot (0: fail at once with SWARMNET_POOL_FULL). @default 0 */
  waitMs?: number;
  /** Deadline of the goodbye to the gateway on close or stop, in ms. @default 1000 */
  closeTimeoutMs?: number;
  /** Stream window in items, unless a `stream` command says otherwise. @default 2048 */
  window?: number;
  /** Stream window in bytes. @default 16 MiB */
  windowBytes?: number;
  /** CURVE keys (Z85), for a gateway with CURVE on. Taken from the controller when given one. */
  curve?: ClientCurve;
  /** Largest frame accepted, in bytes. @default 64 MiB */
  maxMessageSize?: number;
  /** The wire. @default ZeroMQ (the controller's, with `controller`) */
  transport?: TransportFactory;
}

/**
 * Where to connect: one gateway (`"tcp://host:port"`, `"host:port"` or a
 * port), or a Controller, whose gateways are tried in turn as
 * `controller.getClient()` would (skipping a full or dead one). The actor is
 * your child either way, not the controller's.
 */
export type SwarmClientInput = ({ endpoint: string | number; controller?: never } | { controller: Controller; endpoint?: never }) &
  SwarmClientOptions;

/** What a parent sends the client actor. Requests are served one at a time, in order; the rest wait. */
export type SwarmClientCommand =
  /** Batch get: `name(...args, kwargs)` on the gateway; answered by `swarmnet.result` (bytes or a CBOR value). */
  | { type: "call"; requestId?: RequestId; name: string; args?: readonly unknown[]; kwargs?: Kwargs; timeoutMs?: number }
  /** Batch send: `buffer` reaches the subroutine as `kwargs.buffer`; answered by `swarmnet.result` with its integer. */
  | {
      type: "send";
      requestId?: RequestId;
      name: string;
      buffer: Uint8Array;
      args?: readonly unknown[];
      kwargs?: Kwargs;
      timeoutMs?: number;
    }
  /** Round trip; answered by `swarmnet.result` with `data`. */
  | { type: "ping"; requestId?: RequestId; data?: unknown; timeoutMs?: number }
  /** Streams a generator subroutine: one `swarmnet.item` per item, then `swarmnet.end` (or `swarmnet.error`). */
  | {
      type: "stream";
      requestId?: RequestId;
      name: string;
      args?: readonly unknown[];
      kwargs?: Kwargs;
      window?: number;
      windowBytes?: number;
      timeoutMs?: number;
    }
  /**
   * Without `requestId`: aborts the stream in flight (`swarmnet.end` with `aborted: true`;
   * the generator's `finally` runs on the gateway). With one: that stream, or that
   * request while it still waits its turn (`swarmnet.error`, SWARMNET_ABORTED).
   * A batch call in flight runs to its answer or deadline.
   */
  | { type: "abort"; requestId?: RequestId }
  /** Closes the handler on the gateway; unanswered requests get `swarmnet.error` (SWARMNET_CLOSED); then `swarmnet.closed` and done. */
  | { type: "close" };

/** What the client actor tells its parent (`sendParent`) and its observers (`emit`). `clientId` is the actor's id. */
export type SwarmClientEmitted =
  | { type: "swarmnet.connected"; clientId: string; endpoint: string; handlerId: number }
  | { type: "swarmnet.result"; clientId: string; requestId: RequestId; value: unknown }
  | { type: "swarmnet.error"; clientId: string; requestId: RequestId; code: ErrorCode; message: string; error: SwarmnetError }
  | { type: "swarmnet.item"; clientId: string; requestId: RequestId; ident: number; buffer: unknown }
  | { type: "swarmnet.end"; clientId: string; requestId: RequestId; count: number; aborted: boolean }
  | { type: "swarmnet.closed"; clientId: string };

export type SwarmClientEmittedType = SwarmClientEmitted["type"];

/** The actor's output when it closed cleanly. */
export interface SwarmClientOutput {
  endpoint: string;
  handlerId: number | undefined;
  /** Requests answered (results, errors and stream ends). */
  answered: number;
}

type Notice = SwarmClientEmitted extends infer E ? (E extends SwarmClientEmitted ? Omit<E, "clientId"> : never) : never;

/** Internal events: answers from the client machine and the stream pump. */
type InternalEvent =
  | { type: "reply.ok"; wireId: number; value: unknown }
  | { type: "reply.failed"; wireId: number; error: SwarmnetError }
  | { type: "pump.item"; wireId: number; ident: number; buffer: unknown }
  | { type: "pump.end"; wireId: number; count: number; aborted: boolean }
  | { type: "pump.failed"; wireId: number; error: SwarmnetError }
  | { type: "client.ended" };

export type SwarmClientEvent = SwarmClientCommand | InternalEvent;

/** The commands that are requests (queued, answered one at a time); `abort` and `close` are not. */
const REQUEST_COMMANDS = ["call", "send", "ping", "stream"] as const satisfies ReadonlyArray<SwarmClientCommand["type"]>;

/** A request waiting its turn. */
interface QueuedRequest {
  readonly requestId: RequestId;
  /** What goes on the wire (checked, not numbered yet), built by actors/request.ts as the Client class builds its own. */
  readonly request: Request;
  readonly timeoutMs: number;
  /** When a batch call's deadline passes (performance.now() ms): counted from the command, queue time included. */
  readonly deadline?: number;
}

/** The request on the wire. */
interface InFlight extends QueuedRequest {
  readonly wireId: number;
  readonly reader: StreamReader | undefined;
}

interface Plan extends ConnectPlan {
  readonly waitMs: number;
  readonly closeTimeoutMs: number;
  readonly window: number;
  readonly windowBytes: number;
}

export interface SwarmClientContext {
  readonly plan: Plan;
  /** Index into `plan.endpoints` of the gateway being tried or used. */
  readonly attempt: number;
  readonly endpoint: string;
  readonly link: SessionLink | undefined;
  readonly handlerId: number | undefined;
  readonly queue: readonly QueuedRequest[];
  readonly current: InFlight | undefined;
  readonly nextWireId: number;
  readonly nextRequestId: number;
  readonly answered: number;
  /** Why the actor failed. */
  readonly error: SwarmnetError | undefined;
}

export const DEFAULT_CLIENT_CLOSE_TIMEOUT_MS = 1_000;
const MAX_WIRE_ID = 0xffff_ffff;

function positive(name: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min) {
    throw new InvalidArgumentError(`swarmClientMachine input '${name}' must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

function planOf(input: SwarmClientInput): Plan {
  const fromController = input.controller?.connectPlan();
  if (!fromController && input.endpoint === undefined) {
    throw new InvalidArgumentError("swarmClientMachine input needs an 'endpoint' or a 'controller'");
  }
  const window = positive("window", input.window, DEFAULT_STREAM_WINDOW);
  if (window > MAX_STREAM_WINDOW)
    throw new InvalidArgumentError(`swarmClientMachine input 'window' must be at most ${MAX_STREAM_WINDOW}, got ${window}`);
  return {
    endpoints: fromController?.endpoints ?? [normalizeEndpoint(input.endpoint!)],
    transport: input.transport ?? fromController?.transport ?? zmqTransport,
    curve: input.curve ?? fromController?.curve,
    maxMessageSize: positive("maxMessageSize", input.maxMessageSize, fromController?.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE_BYTES),
    timeoutMs: positive("timeoutMs", input.timeoutMs, fromController?.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    connectTimeoutMs: positive("connectTimeoutMs", input.connectTimeoutMs, fromController?.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS),
    waitMs: positive("waitMs", input.waitMs, 0, 0),
    closeTimeoutMs: positive("closeTimeoutMs", input.closeTimeoutMs, DEFAULT_CLIENT_CLOSE_TIMEOUT_MS),
    window,
    windowBytes: positive("windowBytes", input.windowBytes, DEFAULT_STREAM_WINDOW_BYTES),
  };
}

/** Checks a command and turns it into a queued request; an InvalidArgumentError says what is wrong. */
function requestOf(command: SwarmClientCommand, requestId: RequestId, plan: Plan): QueuedRequest | InvalidArgumentError {
  const request = unstampedRequestOf(command, requestId, plan);
  // A stream's timeoutMs bounds each wait for data; a call's runs from now, its time in the queue included.
  if (request instanceof InvalidArgumentError || request.request.kind === "stream") return request;
  return { ...request, deadline: performance.now() + request.timeoutMs };
}

function unstampedRequestOf(command: SwarmClientCommand, requestId: RequestId, plan: Plan): QueuedRequest | InvalidArgumentError {
  const timeoutMs = "timeoutMs" in command && command.timeoutMs !== undefined ? command.timeoutMs : plan.timeoutMs;
  const badTimeout = checkTimeout(command.type, timeoutMs);
  if (badTimeout !== undefined) return badTimeout;
  const request = commandRequest(command, plan);
  return request instanceof InvalidArgumentError ? request : { requestId, request, timeoutMs };
}

/** The request a command asks for, checked as the Client class checks its own (actors/request.ts). */
function commandRequest(command: SwarmClientCommand, plan: Plan): Request | InvalidArgumentError {
  switch (command.type) {
    case "ping":
      return pingRequest(command.data ?? "ping");
    case "call":
      return batchGetRequest("call", command.name, command.args ?? [], command.kwargs ?? {});
    case "send":
      return batchSendRequest("send", command.name, command.buffer, command.args ?? [], command.kwargs ?? {});
    case "stream":
      return streamRequest(
        "stream",
        command.name,
        command.args ?? [],
        command.kwargs ?? {},
        command.window ?? plan.window,
        command.windowBytes ?? plan.windowBytes,
      );
    default:
      return new InvalidArgumentError(`${command.type} is not a request`);
  }
}

/**
 * `sendParent` needs a parent; a root client actor only emits. An invoked or
 * spawned actor is made with its parent in its (public) `options.parent`.
 */
function hasParent(self: AnyActorRef): boolean {
  return self instanceof Actor && self.options.parent !== undefined;
}

function asSwarmnetError(error: unknown): SwarmnetError {
  if (error instanceof SwarmnetError) return error;
  return new ConnectionError(describeThrown(error).message, { cause: error });
}

/** Errors after which the next gateway (with a controller's several) is worth a try, as Controller.getClient() does. */
function isFailover(error: SwarmnetError | undefined): boolean {
  const code = error?.code;
  return code === ErrorCode.POOL_FULL || code === ErrorCode.TIMEOUT || code === ErrorCode.CONNECTION || code === ErrorCode.SESSION_ENDED;
}

function clientOf(self: AnyActorRef): ClientActorRef | undefined {
  return (self.getSnapshot() as { children: Record<string, AnyActorRef | undefined> }).children["client"] as ClientActorRef | undefined;
}

function errorNotice(requestId: RequestId, error: SwarmnetError): Notice {
  return { type: "swarmnet.error", requestId, code: error.code, message: error.message, error };
}

interface Announcer {
  emit(event: SwarmClientEmitted): void;
  sendParent(event: SwarmClientEmitted): void;
}

function announce(enqueue: Announcer, self: AnyActorRef, notice: Notice): void {
  const event = { ...notice, clientId: self.id } as SwarmClientEmitted;
  enqueue.emit(event);
  if (hasParent(self)) enqueue.sendParent(event);
}

/** How a stream's reader talks back: credit and abort on the wire, its end to the client machine. */
function streamControl(self: AnyActorRef, link: SessionLink): StreamControl {
  return {
    send: (message) => link.send([encode(message)]),
    finished: (id) => clientOf(self)?.send({ type: "call.finished", id }),
    failed: (id, error) => clientOf(self)?.send({ type: "call.failed", id, error }),
  };
}

/** Pulls a stream's items from its reader (which grants credit as it goes) and reports each to the client actor. */
const pump = fromCallback<InternalEvent, { wireId: number; reader: StreamReader }>(({ input, sendBack }) => {
  const { wireId, reader } = input;
  let stopped = false;
  let settled = false;
  void (async () => {
    let count = 0;
    try {
      for (;;) {
        const next = await reader.next();
        if (stopped) return;
        if (next.done) break;
        count++;
        sendBack({ type: "pump.item", wireId, ident: next.value[0], buffer: next.value[1] });
      }
      settled = true;
      sendBack({ type: "pump.end", wireId, count, aborted: reader.end === "aborted" });
    } catch (error) {
      settled = true;
      if (!stopped) sendBack({ type: "pump.failed", wireId, error: asSwarmnetError(error) });
    }
  })();
  return () => {
    stopped = true;
    if (settled || reader.end !== "open") return;
    // Left mid-stream (closing, stopped, connection gone): stop the generator on the gateway,
    // and settle the reader at once: nobody waits for the abort's acknowledgement now.
    void reader.abort();
    reader.fail(new ClosedError("stream left unfinished: the client actor is closing or stopped"));
  };
});

/** Fails on purpose: being in `failed` puts the client actor in error status, its children stopped, its parent told. */
const failure = fromPromise<never, SwarmnetError>(({ input }) => Promise.reject(input));

export const swarmClientMachine = setup({
  types: {
    input: {} as SwarmClientInput,
    context: {} as SwarmClientContext,
    events: {} as SwarmClientEvent,
    emitted: {} as SwarmClientEmitted,
    output: {} as SwarmClientOutput,
    children: {} as { client: "client"; pump: "pump"; failure: "failure" },
  },
  actors: { client: clientMachine, pump, failure },
  actions: {
    /** One answer or notice: to the parent, and to `actor.on(...)` observers. */
    tell: enqueueActions(({ enqueue, self }, notice: Notice) => announce(enqueue, self, notice)),
    tellFailed: enqueueActions(({ context, event, enqueue, self }) => {
      assertEvent(event, ["reply.failed", "pump.failed"]);
      announce(enqueue, self, errorNotice(context.current!.requestId, event.error));
    }),
    /** A command becomes a queued request, or is answered at once with what is wrong with it. */
    enqueue: enqueueActions(({ context, event, enqueue, self }) => {
      assertEvent(event, REQUEST_COMMANDS);
      const assigned = event.requestId === undefined;
      const requestId = event.requestId ?? context.nextRequestId;
      const request = requestOf(event, requestId, context.plan);
      if (request instanceof InvalidArgumentError) {
        announce(enqueue, self, errorNotice(requestId, request));
        enqueue.assign({ answered: context.answered + 1, nextRequestId: context.nextRequestId + (assigned ? 1 : 0) });
        return;
      }
      enqueue.assign({ queue: [...context.queue, request], nextRequestId: context.nextRequestId + (assigned ? 1 : 0) });
    }),
    /** `abort` with the id of a request still waiting its turn: it leaves the queue, answered SWARMNET_ABORTED. */
    dropQueued: enqueueActions(({ context, event, enqueue, self }) => {
      assertEvent(event, "abort");
      if (event.requestId === undefined) return;
      const dropped = context.queue.filter((r) => r.requestId === event.requestId);
      if (dropped.length === 0) return;
      for (const r of dropped)
        announce(enqueue, self, errorNotice(r.requestId, new AbortedError(`request ${String(r.requestId)} aborted before it was sent`)));
      enqueue.assign({
        queue: context.queue.filter((r) => r.requestId !== event.requestId),
        answered: context.answered + dropped.length,
      });
    }),
    /** Puts the head of the queue on the wire: the client machine settles it through reply.ok / reply.failed. */
    takeNext: assign(({ context, self }) => {
      const [head, ...rest] = context.queue;
      const wireId = context.nextWireId;
      const link = context.link!;
      const reader =
        head!.request.kind === "stream"
          ? new StreamReader(wireId, streamControl(self, link), {
              window: head!.request.message["window"] as number,
              windowBytes: head!.request.message["windowBytes"] as number,
              label: head!.request.label,
              timeoutMs: head!.timeoutMs,
            })
          : undefined;
      return {
        queue: rest,
        current: { ...head!, wireId, reader },
        nextWireId: wireId >= MAX_WIRE_ID ? 1 : wireId + 1,
      };
    }),
    sendCurrent: enqueueActions(({ context, enqueue, self }) => {
      const current = context.current!;
      const frames = wireProblem(current.request) ?? encodeRequest(current.request, current.wireId);
      if (frames instanceof InvalidArgumentError) {
        enqueue.raise({ type: "reply.failed", wireId: current.wireId, error: frames });
        if (current.reader) current.reader.fail(frames);
        return;
      }
      const { wireId, reader } = current;
      const call: PendingCall = {
        id: wireId,
        kind: current.request.kind,
        label: current.request.label,
        frames,
        timeoutMs: current.timeoutMs,
        ...(current.deadline === undefined ? {} : { deadline: current.deadline }),
        // Settled from inside the client machine's actions: hand over on a microtask, so this
        // actor's transition does not run nested inside the client's.
        resolve: (value) => queueMicrotask(() => self.send({ type: "reply.ok", wireId, value })),
        reject: (error) => queueMicrotask(() => self.send({ type: "reply.failed", wireId, error })),
        ...(reader ? { sink: reader } : {}),
      };
      reader?.markOpened();
      enqueue.sendTo("client", { type: "call", call });
    }),
    finishCurrent: assign({ current: () => undefined, answered: ({ context }) => context.answered + 1 }),
    /** Closing: every request not answered yet is answered SWARMNET_CLOSED. */
    failAllClosed: enqueueActions(({ context, enqueue, self }) => {
      const open = [...(context.current ? [context.current] : []), ...context.queue];
      for (const r of open) announce(enqueue, self, errorNotice(r.requestId, new ClosedError("client actor closed before the answer")));
      enqueue.assign({ answered: context.answered + open.length });
    }),
    refuseClosed: enqueueActions(({ context, event, enqueue, self }) => {
      assertEvent(event, REQUEST_COMMANDS);
      announce(enqueue, self, errorNotice(event.requestId ?? context.nextRequestId, new ClosedError("client actor is closing")));
      if (event.requestId === undefined) enqueue.assign({ nextRequestId: context.nextRequestId + 1 });
    }),
  },
  guards: {
    isCurrent: ({ context, event }) => "wireId" in event && context.current?.wireId === event.wireId,
    streamWaiting: ({ context }) => context.queue[0]?.request.kind === "stream",
    callWaiting: ({ context }) => context.queue.length > 0,
  },
}).createMachine({
  id: "swarmClient",
  context: ({ input }) => {
    const plan = planOf(input);
    return {
      plan,
      attempt: 0,
      endpoint: plan.endpoints[0]!,
      link: undefined,
      handlerId: undefined,
      queue: [],
      current: undefined,
      nextWireId: 1,
      nextRequestId: 1,
      answered: 0,
      error: undefined,
    };
  },
  output: ({ context }) => ({ endpoint: context.endpoint, handlerId: context.handlerId, answered: context.answered }),
  initial: "session",
  states: {
    session: {
      description: "One connection to one gateway (the next one of a controller's, after a failover): the client machine runs under it.",
      entry: assign(({ context }) => {
        const { plan } = context;
        const endpoint = plan.endpoints[context.attempt]!;
        const inner = plan.transport.client(endpoint, { maxMessageSize: plan.maxMessageSize, curve: plan.curve });
        return { endpoint, link: new SessionLink(new DeliveryLink(inner), plan.closeTimeoutMs), handlerId: undefined };
      }),
      invoke: {
        id: "client",
        src: "client",
        input: ({ context }) => ({
          transport: context.link!,
          endpoint: context.endpoint,
          connectTimeoutMs: context.plan.connectTimeoutMs,
          closeTimeoutMs: context.plan.closeTimeoutMs,
          waitMs: context.plan.waitMs,
          maxMessageSize: context.plan.maxMessageSize,
        }),
        onSnapshot: {
          // Not while closing: a welcome that crossed our close is no longer news.
          guard: ({ context, event }) => context.handlerId === undefined && context.link !== undefined && event.snapshot.value === "ready",
          target: ".ready",
          actions: [
            assign({ handlerId: ({ event }) => event.snapshot.context.handlerId }),
            {
              type: "tell",
              params: ({ context }) => ({ type: "swarmnet.connected", endpoint: context.endpoint, handlerId: context.handlerId! }),
            },
          ],
        },
        // The client machine ended: the close we asked for, or a failure. Its error is read
        // off its final snapshot (xstate forwards only active snapshots), then judged below.
        onDone: {
          actions: [
            assign({
              error: ({ context, self }) =>
                clientOf(self)?.getSnapshot().context.error ?? new ClosedError(`connection to gateway ${context.endpoint} ended`),
            }),
            raise({ type: "client.ended" }),
          ],
        },
      },
      on: {
        call: { actions: "enqueue" },
        send: { actions: "enqueue" },
        ping: { actions: "enqueue" },
        stream: { actions: "enqueue" },
        abort: { actions: "dropQueued" },
        close: ".closing",
        "client.ended": [
          { guard: ({ context }) => context.link === undefined, target: "closed" },
          {
            // Never welcomed, and the controller has another gateway: try it, as Controller.getClient() would.
            guard: ({ context }) =>
              context.handlerId === undefined && context.attempt + 1 < context.plan.endpoints.length && isFailover(context.error),
            target: "session",
            reenter: true,
            actions: assign({ attempt: ({ context }) => context.attempt + 1, error: () => undefined }),
          },
          { target: "failed" },
        ],
      },
      initial: "connecting",
      states: {
        connecting: { description: "Waiting for the gateway's welcome; commands queue meanwhile." },
        ready: {
          description: "Connected, nothing on the wire: the next queued request goes out at once.",
          always: [
            { guard: "streamWaiting", target: "streaming" },
            { guard: "callWaiting", target: "awaiting" },
          ],
        },
        awaiting: {
          description: "A ping or batch call is out; its answer (or failure) comes back as reply.ok / reply.failed.",
          entry: ["takeNext", "sendCurrent"],
          on: {
            "reply.ok": {
              guard: "isCurrent",
              target: "ready",
              actions: [
                {
                  type: "tell",
                  params: ({ context, event }) => ({ type: "swarmnet.result", requestId: context.current!.requestId, value: event.value }),
                },
                "finishCurrent",
              ],
            },
            "reply.failed": { guard: "isCurrent", target: "ready", actions: ["tellFailed", "finishCurrent"] },
          },
        },
        streaming: {
          description: "A stream is open: the pump pulls its reader and reports each item; abort ends it.",
          entry: ["takeNext", "sendCurrent"],
          invoke: {
            id: "pump",
            src: "pump",
            input: ({ context }) => ({ wireId: context.current!.wireId, reader: context.current!.reader! }),
          },
          on: {
            "pump.item": {
              guard: "isCurrent",
              actions: {
                type: "tell",
                params: ({ context, event }) => ({
                  type: "swarmnet.item",
                  requestId: context.current!.requestId,
                  ident: event.ident,
                  buffer: event.buffer,
                }),
              },
            },
            "pump.end": {
              guard: "isCurrent",
              target: "ready",
              actions: [
                {
                  type: "tell",
                  params: ({ context, event }) => ({
                    type: "swarmnet.end",
                    requestId: context.current!.requestId,
                    count: event.count,
                    aborted: event.aborted,
                  }),
                },
                "finishCurrent",
              ],
            },
            "pump.failed": { guard: "isCurrent", target: "ready", actions: ["tellFailed", "finishCurrent"] },
            // The machine's answer to a stream carries nothing the pump has not seen: the reader ends it.
            "reply.failed": { guard: "isCurrent", actions: ({ context, event }) => context.current!.reader!.fail(event.error) },
            abort: [
              {
                guard: ({ context, event }) => event.requestId === undefined || event.requestId === context.current?.requestId,
                actions: ({ context }) => void context.current!.reader!.abort(),
              },
              { actions: "dropQueued" },
            ],
          },
        },
        closing: {
          description: "Closing the handler: every unanswered request was answered SWARMNET_CLOSED; new ones are refused.",
          entry: [
            ({ context }) => context.link?.markClosing(),
            "failAllClosed",
            assign({ link: () => undefined, current: () => undefined, queue: () => [] }),
            enqueueActions(({ enqueue }) => enqueue.sendTo("client", { type: "close" })),
          ],
          on: {
            call: { actions: "refuseClosed" },
            send: { actions: "refuseClosed" },
            ping: { actions: "refuseClosed" },
            stream: { actions: "refuseClosed" },
            abort: {},
            close: {},
          },
        },
      },
    },
    closed: {
      description: "Closed cleanly (swarmnet.closed sent); the output counts the requests answered.",
      type: "final",
      entry: { type: "tell", params: { type: "swarmnet.closed" } },
    },
    failed: {
      description: "The connection failed: the failure child rejects, so the actor errors and its parent gets xstate.error.actor.<id>.",
      invoke: { id: "failure", src: "failure", input: ({ context }) => context.error! },
    },
  },
});

export type SwarmClientActorRef = ActorRefFrom<typeof swarmClientMachine>;
export type SwarmClientSnapshot = SnapshotFrom<typeof swarmClientMachine>;
