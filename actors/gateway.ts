/**
 * The gateway machine owns the ROUTER transport's lifecycle and the
 * supervisor; the dispatcher routes frames while it runs.
 *
 *   idle --start--> starting --(bound)--> running --stop | remote.close--> stopping --> stopped
 *                      \--(bind failed)--> failed
 */
import { assign, fromPromise, sendTo, setup, type ActorRefFrom, type SnapshotFrom } from "xstate";
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

export type GatewayEvent =
  | { type: "start" }
  | { type: "stop" }
  | { type: "remote.close"; peer: Peer; id: number };

/** Resolves when no session has a request in flight, or after `graceMs`. */
/** Answers a peer inside its session (numbered, replayed if the link drops) when it has one. */
function answerPeer(context: GatewayContext, peer: Peer, message: GatewayMessage): void {
  const session = context.table.byPeer(peer.key);
  if (session) session.reply(message);
  else context.outbox.send(peer, message);
}

function whenQuiet(table: SessionTable, graceMs: number): Promise<void> {
  const deadline = Date.now() + graceMs;
  return new Promise((resolve) => {
    const check = (): void => {
      if (Date.now() >= deadline || table.all().every((s) => s.inflight === undefined)) resolve();
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
    drain: fromPromise<void, { table: SessionTable; graceMs: number }>(({ input }) =>
      whenQuiet(input.table, input.graceMs),
    ),
    close: fromPromise<void, { context: GatewayContext }>(async ({ input }) => {
      await input.context.transport.flush(1_000);
      await input.context.transport.close();
    }),
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
      on: { start: "starting", stop: "stopped" },
    },
    starting: {
      invoke: {
        src: "listen",
        input: ({ context }) => ({ transport: context.transport, dispatcher: context.dispatcher }),
        onDone: { target: "running", actions: assign({ endpoint: ({ event }) => event.output }) },
        onError: { target: "failed", actions: assign({ error: ({ event }) => event.error }) },
      },
    },
    running: {
      entry: ({ context, self }) => {
        const supervisor = self.getSnapshot().children["supervisor"];
        if (!supervisor) throw new Error("supervisor did not start");
        context.dispatcher.attach({ supervisor, gateway: self });
      },
      on: {
        stop: "stopping",
        "remote.close": [
          {
            guard: ({ context }) => context.allowRemoteClose,
            target: "stopping",
            actions: ({ context, event }) => answerPeer(context, event.peer, { type: "gateway.closing", id: event.id }),
          },
          {
            actions: ({ context, event }) =>
              answerPeer(context, event.peer, errorReply(event.id, ErrorCode.REMOTE_CLOSE_DISABLED, "this gateway does not allow clients to close it")),
          },
        ],
      },
    },
    stopping: {
      // New clients are refused from here on; live sessions keep being served while draining.
      entry: ({ context }) => context.dispatcher.detach(ErrorCode.GATEWAY_STOPPING, "gateway is stopping"),
      initial: "draining",
      states: {
        draining: {
          invoke: {
            src: "drain",
            input: ({ context }) => ({ table: context.table, graceMs: context.stopGraceMs }),
            onDone: "closing",
            onError: "closing",
          },
        },
        closing: {
          // Sessions still open are told the gateway is going; their handlers end.
          entry: sendTo("supervisor", { type: "shutdown", code: ErrorCode.GATEWAY_STOPPING, reason: "gateway stopped" }),
          invoke: { src: "close", input: ({ context }) => ({ context }), onDone: "#gateway.stopped", onError: "#gateway.stopped" },
        },
      },
    },
    failed: { type: "final" },
    stopped: { type: "final" },
  },
});

export type GatewayActorRef = ActorRefFrom<typeof gatewayMachine>;
export type GatewaySnapshot = SnapshotFrom<typeof gatewayMachine>;
