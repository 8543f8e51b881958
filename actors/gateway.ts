/**
 * The gateway machine owns the ROUTER transport's lifecycle and the
 * supervisor; the dispatcher routes frames while it runs.
 *
 *   idle --start--> starting --(bound)--> running --stop | remote.close (allowed)--> stopping
 *     |                 \--(bind failed)--> failed (final)
 *     \--stop--> stopped (final)
 *   stopping: draining --(no request in flight | after stopGraceMs)--> closing --(transport closed)--> stopped (final)
 */
import { assertEvent, assign, fromPromise, sendTo, setup, type ActorRefFrom, type SnapshotFrom } from "xstate";
import { ErrorCode, errorReply, type GatewayMessage } from "../protocol/index.js";
import type { Peer, ServerTransport } from "../transports/transport.js";
import { Dispatcher, WireOutbox } from "./dispatcher.js";
import type { FileSandbox } from "./file-sandbox.js";
import type { HandlerHooks } from "./handler.js";
import { SessionTable } from "./session.js";
import type { SubroutineRegistry } from "./subroutines.js";
import { supervisorMachine } from "./supervisor.js";

export interface GatewayMachineInput {
  transport: ServerTransport;
  registry: SubroutineRegistry;
  maxPoolSize: number;
  maxRestarts: number;
  restartWindowMs: number;
  livenessMs: number;
  maxEnvelopeBytes: number;
  /** How long stop() lets calls in flight finish. */
  stopGraceMs: number;
  allowRemoteClose: boolean;
  hooks?: HandlerHooks | undefined;
  /** File roots and download dir for file transfer. */
  files?: FileSandbox | undefined;
}

export interface GatewayContext extends GatewayMachineInput {
  table: SessionTable;
  outbox: WireOutbox;
  dispatcher: Dispatcher;
  endpoint: string | undefined;
  error: unknown;
}

export type GatewayEvent = { type: "start" } | { type: "stop" } | { type: "remote.close"; peer: Peer; id: number };

/** Answers a peer inside its session (numbered, replayed if the link drops) when it has one. */
function answerPeer(context: GatewayContext, peer: Peer, message: GatewayMessage): void {
  const session = context.table.byPeer(peer.key);
  if (session) session.reply(message);
  else context.outbox.send(peer, message);
}

/**
 * Resolves when no session has a request in flight (polled every 5 ms; nothing
 * tells the machine when a request ends). The grace deadline is the machine's
 * own (`after` stopGrace); stopping this actor stops the polling.
 */
function whenQuiet(table: SessionTable, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (signal.aborted) return;
      if (table.all().every((s) => s.inflight === undefined)) resolve();
      else setTimeout(check, 5).unref();
    };
    check();
  });
}

export const gatewayMachine = setup({
  types: {
    input: {} as GatewayMachineInput,
    context: {} as GatewayContext,
    events: {} as GatewayEvent,
  },
  actors: {
    supervisor: supervisorMachine,
    listen: fromPromise<string, { transport: ServerTransport; dispatcher: Dispatcher }>(({ input }) =>
      input.transport.listen({
        onMessage: (peer, frames) => input.dispatcher.onMessage(peer, frames),
        onUndeliverable: (peer, error, tag) => input.dispatcher.onUndeliverable(peer, error, tag),
      }),
    ),
    quiet: fromPromise<void, { table: SessionTable }>(({ input, signal }) => whenQuiet(input.table, signal)),
    close: fromPromise<void, { context: GatewayContext }>(async ({ input }) => {
      await input.context.transport.flush(1_000);
      await input.context.transport.close();
    }),
  },
  delays: {
    /** How long stop() lets calls in flight finish (`stopGraceMs`). */
    stopGrace: ({ context }) => context.stopGraceMs,
  },
  guards: {
    remoteCloseAllowed: ({ context }) => context.allowRemoteClose,
  },
  actions: {
    /** The dispatcher starts routing: hellos go to the supervisor, `gateway.close` to this machine. */
    attachDispatcher: ({ context, self }) => {
      const supervisor = self.getSnapshot().children["supervisor"];
      if (!supervisor) throw new Error("supervisor did not start");
      context.dispatcher.attach({ supervisor, gateway: self });
    },
    // New clients are refused from here on; live sessions keep being served while draining.
    detachDispatcher: ({ context }) => context.dispatcher.detach(ErrorCode.GATEWAY_STOPPING, "gateway is stopping"),
    answerClosing: ({ context, event }) => {
      assertEvent(event, "remote.close");
      answerPeer(context, event.peer, { type: "gateway.closing", id: event.id });
    },
    refuseRemoteClose: ({ context, event }) => {
      assertEvent(event, "remote.close");
      answerPeer(
        context,
        event.peer,
        errorReply(event.id, ErrorCode.REMOTE_CLOSE_DISABLED, "this gateway does not allow clients to close it"),
      );
    },
    // Sessions still open are told the gateway is going; their handlers end.
    shutdownSupervisor: sendTo("supervisor", { type: "shutdown", code: ErrorCode.GATEWAY_STOPPING, reason: "gateway stopped" }),
  },
}).createMachine({
  id: "gateway",
  context: ({ input }) => {
    const table = new SessionTable();
    const outbox = new WireOutbox(input.transport, input.maxEnvelopeBytes);
    return {
      ...input,
      table,
      outbox,
      dispatcher: new Dispatcher(table, outbox, input.maxEnvelopeBytes),
      endpoint: undefined,
      error: undefined,
    };
  },
  // The supervisor lives as long as the gateway, so that stopping can still end sessions.
  invoke: {
    id: "supervisor",
    systemId: "supervisor",
    src: "supervisor",
    input: ({ context }) => ({
      table: context.table,
      registry: context.registry,
      outbox: context.outbox,
      maxPoolSize: context.maxPoolSize,
      maxRestarts: context.maxRestarts,
      restartWindowMs: context.restartWindowMs,
      livenessMs: context.livenessMs,
      hooks: context.hooks,
      files: context.files,
      maxMessageSize: context.maxEnvelopeBytes,
    }),
  },
  initial: "idle",
  states: {
    idle: {
      description: "Built, not bound: start() binds; stop() before start ends it at once.",
      on: { start: "starting", stop: "stopped" },
    },
    starting: {
      description: "Binding the transport (listen).",
      invoke: {
        src: "listen",
        input: ({ context }) => ({ transport: context.transport, dispatcher: context.dispatcher }),
        onDone: { target: "running", actions: assign({ endpoint: ({ event }) => event.output }) },
        onError: { target: "failed", actions: assign({ error: ({ event }) => event.error }) },
      },
    },
    running: {
      description: "Bound and serving: the dispatcher routes every frame; hellos go to the supervisor.",
      entry: "attachDispatcher",
      on: {
        stop: "stopping",
        "remote.close": [{ guard: "remoteCloseAllowed", target: "stopping", actions: "answerClosing" }, { actions: "refuseRemoteClose" }],
      },
    },
    stopping: {
      description: "Refusing new clients; live sessions are served until they are quiet or the grace is up, then the transport closes.",
      entry: "detachDispatcher",
      initial: "draining",
      states: {
        draining: {
          description: "Waiting for calls in flight to finish, at most stopGraceMs.",
          invoke: { src: "quiet", input: ({ context }) => ({ table: context.table }), onDone: "closing", onError: "closing" },
          after: { stopGrace: "closing" },
        },
        closing: {
          description: "Sessions still open are ended (their clients told); the transport flushes and closes.",
          entry: "shutdownSupervisor",
          invoke: { src: "close", input: ({ context }) => ({ context }), onDone: "#gateway.stopped", onError: "#gateway.stopped" },
        },
      },
    },
    failed: { description: "The transport could not bind (the error is in context.error).", type: "final" },
    stopped: { description: "The transport is closed and every session ended.", type: "final" },
  },
});

export type GatewayActorRef = ActorRefFrom<typeof gatewayMachine>;
export type GatewaySnapshot = SnapshotFrom<typeof gatewayMachine>;
