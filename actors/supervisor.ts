/**
 * The supervisor is the only place that knows the pool. It spawns a handler
 * per accepted client up to `maxPoolSize`, refuses past it with 503, frees a
 * slot the moment a handler ends, and restarts a crashed handler OTP-style:
 * at most `maxRestarts` within `restartWindowMs`, then the session is ended
 * and the client told.
 *
 *   accepting --shutdown--> stopped (final)
 */
import { assign, fromCallback, setup, stopChild, type ActorRefFrom, type DoneActorEvent, type ErrorActorEvent, type SnapshotFrom } from "xstate";
import { ErrorCode, PROTOCOL_VERSION, Status, describeThrown, errorReply, safeInterval, sessionSilenceMs, type HelloMessage } from "../protocol/index.js";
import type { Peer } from "../transports/transport.js";
import type { FileSandbox } from "./file-sandbox.js";
import { directServer, handlerMachine, type HandlerActorRef, type HandlerHooks, type HandlerInput, type HandlerOutput } from "./handler.js";
import { Session, type Outbox, type SessionEnd, type SessionTable } from "./session.js";
import type { SubroutineRegistry } from "./subroutines.js";

export interface SupervisorInput {
  table: SessionTable;
  registry: SubroutineRegistry;
  outbox: Outbox;
  maxPoolSize: number;
  maxRestarts: number;
  restartWindowMs: number;
  /** A session silent this long is ended (its lease expired). */
  livenessMs: number;
  hooks?: HandlerHooks | undefined;
  /** File roots and download dir, shared by every handler. */
  files?: FileSandbox | undefined;
  /** The gateway's largest accepted frame, told to clients in the welcome. */
  maxMessageSize?: number | undefined;
}

export interface SupervisorContext extends SupervisorInput {
  nextHandlerId: number;
  /** Live handlers; mirrors `table.size`, kept here so snapshots show it. */
  poolSize: number;
  /** Lifetime counters, for snapshots and tests. */
  stats: { accepted: number; refused: number; restarts: number; crashedOut: number; expired: number; waited: number };
  /** Hellos waiting for a slot, first come first served (the pool is full). */
  waiting: readonly Waiter[];
}

export interface Waiter {
  readonly peer: Peer;
  readonly helloId: number;
  readonly since: number;
  readonly maxMessageSize: number | undefined;
}

export type SupervisorEvent =
  | { type: "session.open"; peer: Peer; message: HelloMessage }
  /** A hello waited its `waitMs` for a slot in vain. */
  | { type: "wait.expired"; peerKey: string; helloId: number }
  /**
   * The lease of this session expired (its client went silent, or its link stayed
   * down), or (`overflow`) its delivery buffer passed the hard cap.
   */
  | { type: "session.expired"; peerKey: string; overflow?: boolean }
  /** End every session (gateway stopping) and stop accepting. */
  | { type: "shutdown"; code: string; reason: string };

/**
 * A handler's actor id: `handler-<slot>.<0|1>`. The slot is the lowest one no
 * live session holds, and the suffix alternates on each restart (so a
 * restarted handler never shares the crashed one's id). Ids are reused on
 * purpose: xstate keeps one cache entry per event type a machine ever saw
 * (`xstate.done.actor.<id>`), so ids unique over the gateway's life would
 * grow its memory with every client that came and went. The handler id the
 * client sees (`handlerId`) stays unique.
 */
function actorIdOf(session: Session): string {
  return `handler-${session.slot}.${session.generation % 2}`;
}

function freeSlot(table: SessionTable): number {
  const taken = new Set(table.all().map((s) => s.slot));
  let slot = 1;
  while (taken.has(slot)) slot++;
  return slot;
}

/**
 * Sweeps the leases. If the sweep itself fires late, this process's event loop
 * was blocked (a subroutine hogging it) and the clients' heartbeats are still
 * unread in the socket: nobody is evicted for our own stall.
 */
const leaseSweeper = fromCallback<SupervisorEvent, { table: SessionTable; livenessMs: number }>(({ input, sendBack }) => {
  const intervalMs = safeInterval(Math.max(10, Math.floor(input.livenessMs / 4)));
  let last = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    const stalled = now - last > intervalMs * 2;
    last = now;
    for (const session of input.table.all()) {
      if (session.overflowed) sendBack({ type: "session.expired", peerKey: session.peer.key, overflow: true });
      else if (stalled) session.lastSeen = Math.max(session.lastSeen, now - intervalMs);
      else if (now - session.lastSeen > sessionSilenceMs(input.livenessMs)) sendBack({ type: "session.expired", peerKey: session.peer.key });
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
});

type Spawner = (src: "handler", options: { id: string; input: HandlerInput }) => unknown;

/** Spawns the handler of `session` (a first one, or a restart) and gives the session its data plane. */
function spawnHandler(context: SupervisorContext, spawn: Spawner, session: Session): void {
  const ref = spawn("handler", {
    id: session.actorId,
    input: { session, registry: context.registry, hooks: context.hooks, files: context.files },
  }) as HandlerActorRef;
  session.ref = ref;
  session.direct = directServer(ref);
}

/** Spawns a handler for `peer`, welcomes it, and returns the context changes. */
function openSession(context: SupervisorContext, spawn: Spawner, peer: Peer, hello: Pick<HelloMessage, "id" | "maxMessageSize">): Partial<SupervisorContext> {
  const helloId = hello.id;
  const session = new Session(context.nextHandlerId, peer, context.outbox, hello.maxMessageSize);
  session.slot = freeSlot(context.table);
  session.actorId = actorIdOf(session);
  spawnHandler(context, spawn, session);
  context.table.add(session);
  welcome(context, session, helloId);
  return {
    nextHandlerId: context.nextHandlerId + 1,
    poolSize: context.table.size,
    stats: { ...context.stats, accepted: context.stats.accepted + 1 },
  };
}

/** The welcome (outside the session's numbering): the handler, the lease, the secret, this gateway's instance. */
function welcome(context: SupervisorContext, session: Session, helloId: number): void {
  session.notify({
    type: "welcome",
    id: helloId,
    status: Status.OK,
    handlerId: session.handlerId,
    v: PROTOCOL_VERSION,
    livenessMs: context.livenessMs,
    ...(context.maxMessageSize === undefined ? {} : { maxMessageSize: context.maxMessageSize }),
    secret: session.secret,
    gw: context.table.instance,
  });
}

/** Removes a session whose handler is gone or going: its job stops, its slot frees; `end` is remembered for late resumes. */
function dropSession(table: SessionTable, session: Session, end?: SessionEnd): void {
  session.cancelJob();
  table.remove(session, end);
}

/** Ends a session: tells its client why (with a reason), stops its delivery, frees its slot. */
function endSession(table: SessionTable, session: Session, end: SessionEnd): void {
  session.end(end);
  dropSession(table, session, end);
}

export const supervisorMachine = setup({
  types: {
    input: {} as SupervisorInput,
    context: {} as SupervisorContext,
    events: {} as SupervisorEvent,
  },
  actors: { handler: handlerMachine, leaseSweeper },
  guards: {
    // A repeated hello before the client ever used its session (its welcome was lost) is
    // answered again, not given a second slot.
    isRepeatHello: ({ context, event }) => event.type === "session.open" && context.table.byPeer(event.peer.key)?.proven === false,
    // A hello on a routing id whose session is in use is someone else's: never hand out its secret.
    isTakenHello: ({ context, event }) => event.type === "session.open" && context.table.byPeer(event.peer.key) !== undefined,
    isWrongVersion: ({ event }) => event.type === "session.open" && event.message.v !== PROTOCOL_VERSION,
  },
  actions: {
    welcomeAgain: ({ context, event }) => {
      if (event.type !== "session.open") return;
      welcome(context, context.table.byPeer(event.peer.key)!, event.message.id);
    },
    refuseTaken: ({ context, event }) => {
      if (event.type !== "session.open") return;
      context.outbox.send(event.peer, {
        type: "refused",
        id: event.message.id,
        status: Status.CONFLICT,
        code: ErrorCode.RESUME_REFUSED,
        message: "this routing id has a session in use; a reconnecting client resumes it with its secret",
      });
    },
    refuseVersion: ({ context, event }) => {
      if (event.type !== "session.open") return;
      context.outbox.send(event.peer, {
        type: "refused",
        id: event.message.id,
        status: Status.UPGRADE_REQUIRED,
        code: ErrorCode.VERSION_MISMATCH,
        message: `gateway speaks protocol ${PROTOCOL_VERSION}, client sent ${event.message.v}`,
      });
    },
    refuseFull: assign(({ context, event }) => {
      if (event.type === "session.open") {
        context.outbox.send(event.peer, {
          type: "refused",
          id: event.message.id,
          status: Status.POOL_FULL,
          code: ErrorCode.POOL_FULL,
          message:
            `pool is full: ${context.maxPoolSize === 1 ? "its only handler is" : `all ${context.maxPoolSize} handlers are`} taken. ` +
            "Free one (close clients you no longer use), " +
            "let the gateway keep more (maxPoolSize / swarmnet gateway --pool N), " +
            "or wait for a slot (getClient({ waitMs }) / --wait MS)",
        });
      }
      return { stats: { ...context.stats, refused: context.stats.refused + 1 } };
    }),
    /** Hands freed slots to waiting hellos, oldest first. */
    admitWaiters: assign(({ context, spawn }) => {
      if (context.waiting.length === 0) return {};
      let merged: SupervisorContext = context;
      const waiting = [...context.waiting];
      while (waiting.length > 0 && context.table.size < context.maxPoolSize) {
        const waiter = waiting.shift()!;
        merged = { ...merged, ...openSession(merged, spawn as Spawner, waiter.peer, { id: waiter.helloId, maxMessageSize: waiter.maxMessageSize }) };
        merged = { ...merged, stats: { ...merged.stats, waited: merged.stats.waited + 1 } };
      }
      return { nextHandlerId: merged.nextHandlerId, stats: merged.stats, waiting, poolSize: context.table.size };
    }),
  },
}).createMachine({
  id: "supervisor",
  context: ({ input }) => ({
    ...input,
    nextHandlerId: 1,
    poolSize: 0,
    stats: { accepted: 0, refused: 0, restarts: 0, crashedOut: 0, expired: 0, waited: 0 },
    waiting: [],
  }),
  initial: "running",
  states: {
    running: {
      invoke: { src: "leaseSweeper", input: ({ context }) => ({ table: context.table, livenessMs: context.livenessMs }) },
      initial: "accepting",
      states: {
    accepting: {
      always: { guard: ({ context }) => context.table.size >= context.maxPoolSize, target: "full" },
      on: {
        "session.open": [
          { guard: "isRepeatHello", actions: "welcomeAgain" },
          { guard: "isTakenHello", actions: "refuseTaken" },
          { guard: "isWrongVersion", actions: "refuseVersion" },
          { actions: assign(({ context, event, spawn }) => openSession(context, spawn as Spawner, event.peer, event.message)) },
        ],
      },
    },
    full: {
      // The pool-full case is a state: hellos that may wait queue up, the others are refused.
      always: { guard: ({ context }) => context.table.size < context.maxPoolSize && context.waiting.length === 0, target: "accepting" },
      on: {
        "session.open": [
          { guard: "isRepeatHello", actions: "welcomeAgain" },
          { guard: "isTakenHello", actions: "refuseTaken" },
          { guard: "isWrongVersion", actions: "refuseVersion" },
          {
            guard: ({ event }) => (event.message.waitMs ?? 0) > 0,
            actions: [
              assign({
                waiting: ({ context, event }) => [
                  ...context.waiting,
                  { peer: event.peer, helloId: event.message.id, since: Date.now(), maxMessageSize: event.message.maxMessageSize },
                ],
              }),
              ({ event, self }) => {
                const expired: SupervisorEvent = { type: "wait.expired", peerKey: event.peer.key, helloId: event.message.id };
                setTimeout(() => self.getSnapshot().status === "active" && self.send(expired), event.message.waitMs ?? 0).unref();
              },
            ],
          },
          { actions: "refuseFull" },
        ],
        "wait.expired": {
          guard: ({ context, event }) => context.waiting.some((w) => w.peer.key === event.peerKey && w.helloId === event.helloId),
          actions: [
            ({ context, event }) =>
              context.outbox.send(context.waiting.find((w) => w.peer.key === event.peerKey)!.peer, {
                type: "refused",
                id: event.helloId,
                status: Status.POOL_FULL,
                code: ErrorCode.POOL_FULL,
                message: `no slot came free while waiting (pool of ${context.maxPoolSize})`,
              }),
            assign({
              waiting: ({ context, event }) => context.waiting.filter((w) => !(w.peer.key === event.peerKey && w.helloId === event.helloId)),
              stats: ({ context }) => ({ ...context.stats, refused: context.stats.refused + 1 }),
            }),
          ],
        },
      },
    },
  },
  on: {
        "session.expired": {
          actions: [
            stopChild(({ context, event }) => context.table.byPeer(event.peerKey)?.actorId ?? ""),
            assign(({ context, event }) => {
              const session = context.table.byPeer(event.peerKey);
              if (session) {
                // If the client is alive after all (a long stall on its side), it learns why; a
                // client that resumes later is refused with the same reason.
                endSession(
                  context.table,
                  session,
                  event.overflow
                    ? { code: ErrorCode.DELIVERY_OVERFLOW, reason: "overflow", message: `more than the delivery layer's cap of unacknowledged messages (${session.channel.unacked})` }
                    : { code: ErrorCode.LEASE_EXPIRED, reason: "lease", message: `no word from the client for ${context.livenessMs} ms` },
                );
              }
              return { poolSize: context.table.size, stats: { ...context.stats, expired: context.stats.expired + 1 } };
            }),
            "admitWaiters",
          ],
        },
        "xstate.done.actor.*": {
          // stopChild also drops the ended actor from `children`: without it they pile up.
          actions: [stopChild(({ event }) => (event as DoneActorEvent).actorId), assign(({ context, event }) => {
            const done = event as DoneActorEvent<HandlerOutput>;
            const session = context.table.byActor(done.actorId);
            if (session) {
              dropSession(context.table, session, { code: ErrorCode.SESSION_ENDED, reason: "closed", message: "the session was closed" });
              // Free the slot first, then acknowledge: a getClient() right after
              // closeHandler() resolves must find the slot free.
              if (done.output.reason === "closed" && done.output.requestId !== undefined) {
                session.reply({ type: "session.closed", id: done.output.requestId });
              }
            }
            return { poolSize: context.table.size };
          }), "admitWaiters"],
        },
        "xstate.error.actor.*": {
          actions: [stopChild(({ event }) => (event as ErrorActorEvent).actorId), assign(({ context, event, spawn }) => {
            const failed = event as ErrorActorEvent;
            const session = context.table.byActor(failed.actorId);
            if (!session) return {};
            const reason = describeThrown(failed.error).message;
            const now = Date.now();
            session.restarts = session.restarts.filter((t: number) => now - t < context.restartWindowMs);
            const inflight = session.inflight;
            if (session.restarts.length >= context.maxRestarts) {
              if (inflight !== undefined) {
                session.reply(errorReply(inflight, ErrorCode.HANDLER_CRASHED, `handler ${session.handlerId} crashed: ${reason}`));
              }
              endSession(context.table, session, {
                code: ErrorCode.SESSION_ENDED,
                reason: "crashed",
                message: `handler ${session.handlerId} crashed ${context.maxRestarts + 1} times within ${context.restartWindowMs} ms: ${reason}`,
              });
              return {
                poolSize: context.table.size,
                stats: { ...context.stats, crashedOut: context.stats.crashedOut + 1 },
              };
            }
            session.restarts.push(now);
            session.cancelJob();
            const oldActorId = session.actorId;
            session.generation += 1;
            session.actorId = actorIdOf(session);
            spawnHandler(context as SupervisorContext, spawn as Spawner, session);
            context.table.rekey(session, oldActorId);
            if (inflight !== undefined) {
              session.reply(errorReply(inflight, ErrorCode.HANDLER_CRASHED, `handler ${session.handlerId} crashed and was restarted: ${reason}`));
            }
            return { stats: { ...context.stats, restarts: context.stats.restarts + 1 } };
          }), "admitWaiters"],
        },
        shutdown: {
          target: "stopped",
          actions: [
            ({ context, event }) => {
              for (const session of context.table.all()) {
                session.ref?.send({ type: "session.end", code: event.code, reason: event.reason });
                endSession(context.table, session, { code: event.code, reason: "stopped", message: event.reason });
              }
              for (const waiter of context.waiting) {
                context.outbox.send(waiter.peer, { type: "refused", id: waiter.helloId, status: Status.POOL_FULL, code: event.code, message: event.reason });
              }
            },
            assign({ waiting: [] }),
          ],
        },
      },
    },
    stopped: {
      type: "final",
      entry: assign({ poolSize: 0 }),
    },
  },
});

export type SupervisorActorRef = ActorRefFrom<typeof supervisorMachine>;
export type SupervisorSnapshot = SnapshotFrom<typeof supervisorMachine>;
