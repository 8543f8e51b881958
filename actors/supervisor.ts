/**
 * The supervisor is the only place that knows the pool. It spawns a handler
 * per accepted client up to `maxPoolSize`, refuses past it with 503, frees a
 * slot the moment a handler ends, and restarts a crashed handler OTP-style:
 * at most `maxRestarts` within `restartWindowMs`, then the session is ended
 * and the client told.
 *
 *   running (invokes leaseSweeper)
 *   |  accepting --(pool full)--> full --(a slot free, nobody waiting)--> accepting
 *   |    accepting: session.open -> spawn a handler, welcome
 *   |    full: session.open with waitMs -> queue it (wait.expired after waitMs: refuse 503), else refuse 503
 *   |  in either: session.expired (lease, overflow) | xstate.done.actor.* (closed, ended) -> free the slot;
 *   |             xstate.error.actor.* (crash) -> restart within budget, else end the session;
 *   |             then freed slots go to the waiters, oldest first
 *   +--shutdown--> stopped (final: every session ended, every waiter refused)
 */
import {
  assertEvent,
  assign,
  fromCallback,
  raise,
  setup,
  stopChild,
  type ActorRefFrom,
  type DoneActorEvent,
  type ErrorActorEvent,
  type SnapshotFrom,
} from "xstate";
import {
  ErrorCode,
  PROTOCOL_VERSION,
  Status,
  describeThrown,
  errorReply,
  safeInterval,
  sessionSilenceMs,
  type HelloMessage,
  type RefusedMessage,
} from "../protocol/index.js";
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
      else if (now - session.lastSeen > sessionSilenceMs(input.livenessMs))
        sendBack({ type: "session.expired", peerKey: session.peer.key });
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

/** A hello being given a slot: from `session.open`, or a waiter whose turn came. */
type Admission = Pick<Waiter, "peer" | "helloId" | "maxMessageSize">;

function admissionOf({ event }: { event: SupervisorEvent }): Admission {
  assertEvent(event, "session.open");
  return { peer: event.peer, helloId: event.message.id, maxMessageSize: event.message.maxMessageSize };
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

function refusal(peer: Peer, id: number, status: number, code: string, message: string): { peer: Peer; message: RefusedMessage } {
  return { peer, message: { type: "refused", id, status, code, message } };
}

/** A hello refused because the routing id's session is in use. */
function takenRefusal({ event }: { event: SupervisorEvent }): { peer: Peer; message: RefusedMessage } {
  assertEvent(event, "session.open");
  return refusal(
    event.peer,
    event.message.id,
    Status.CONFLICT,
    ErrorCode.RESUME_REFUSED,
    "this routing id has a session in use; a reconnecting client resumes it with its secret",
  );
}

function versionRefusal({ event }: { event: SupervisorEvent }): { peer: Peer; message: RefusedMessage } {
  assertEvent(event, "session.open");
  return refusal(
    event.peer,
    event.message.id,
    Status.UPGRADE_REQUIRED,
    ErrorCode.VERSION_MISMATCH,
    `gateway speaks protocol ${PROTOCOL_VERSION}, client sent ${event.message.v}`,
  );
}

function fullRefusal({ context, event }: { context: SupervisorContext; event: SupervisorEvent }): { peer: Peer; message: RefusedMessage } {
  assertEvent(event, "session.open");
  return refusal(
    event.peer,
    event.message.id,
    Status.POOL_FULL,
    ErrorCode.POOL_FULL,
    `pool is full: ${context.maxPoolSize === 1 ? "its only handler is" : `all ${context.maxPoolSize} handlers are`} taken. ` +
      "Free one (close clients you no longer use), " +
      "let the gateway keep more (maxPoolSize / swarmnet gateway --pool N), " +
      "or wait for a slot (getClient({ waitMs }) / --wait MS)",
  );
}

/** The waiter a `wait.expired` is about, if it still waits. */
function expiredWaiter(context: SupervisorContext, event: SupervisorEvent): Waiter | undefined {
  assertEvent(event, "wait.expired");
  return context.waiting.find((w) => w.peer.key === event.peerKey && w.helloId === event.helloId);
}

/** What ends a session whose lease ran out (or whose delivery buffer overflowed). */
function expiryOf(context: SupervisorContext, session: Session, overflow: boolean | undefined): SessionEnd {
  return overflow
    ? {
        code: ErrorCode.DELIVERY_OVERFLOW,
        reason: "overflow",
        message: `more than the delivery layer's cap of unacknowledged messages (${session.channel.unacked})`,
      }
    : { code: ErrorCode.LEASE_EXPIRED, reason: "lease", message: `no word from the client for ${context.livenessMs} ms` };
}

/**
 * Sending, ending and spawning live in the named actions below; the assigns
 * only count. Spawning stays inside an assign (`spawnSession`,
 * `respawnHandler`), the one place xstate v5 hands out `spawn` with the ref
 * the session needs for its data plane.
 */
const supervisorSetup = setup({
  types: {
    input: {} as SupervisorInput,
    context: {} as SupervisorContext,
    events: {} as SupervisorEvent,
  },
  actors: { handler: handlerMachine, leaseSweeper },
  delays: {
    /** How long a hello in the queue waits for a slot (its `waitMs`). */
    helloWait: ({ event }) => {
      assertEvent(event, "session.open");
      return event.message.waitMs ?? 0;
    },
  },
  guards: {
    // A repeated hello before the client ever used its session (its welcome was lost) is
    // answered again, not given a second slot.
    isRepeatHello: ({ context, event }) => event.type === "session.open" && context.table.byPeer(event.peer.key)?.proven === false,
    // A hello on a routing id whose session is in use is someone else's: never hand out its secret.
    isTakenHello: ({ context, event }) => event.type === "session.open" && context.table.byPeer(event.peer.key) !== undefined,
    isWrongVersion: ({ event }) => event.type === "session.open" && event.message.v !== PROTOCOL_VERSION,
    mayWait: ({ event }) => event.type === "session.open" && (event.message.waitMs ?? 0) > 0,
    isWaiting: ({ context, event }) => event.type === "wait.expired" && expiredWaiter(context, event) !== undefined,
    isPoolFull: ({ context }) => context.table.size >= context.maxPoolSize,
    hasFreeSlotAndNoWaiter: ({ context }) => context.table.size < context.maxPoolSize && context.waiting.length === 0,
  },
  actions: {
    /** Takes a slot for `hello`: a session, its handler (spawned here, as xstate wants), the pool's counters. */
    spawnSession: assign(({ context, spawn }, hello: Admission) => {
      const session = new Session(context.nextHandlerId, hello.peer, context.outbox, hello.maxMessageSize);
      session.slot = freeSlot(context.table);
      session.actorId = actorIdOf(session);
      spawnHandler(context, spawn as Spawner, session);
      context.table.add(session);
      return {
        nextHandlerId: context.nextHandlerId + 1,
        poolSize: context.table.size,
        stats: { ...context.stats, accepted: context.stats.accepted + 1 },
      };
    }),
    /** Welcomes `hello` into its session (again, for a repeated hello whose welcome was lost). */
    welcome: ({ context }, hello: Admission) => welcome(context, context.table.byPeer(hello.peer.key)!, hello.helloId),
    refuse: ({ context }, params: { peer: Peer; message: RefusedMessage }) => {
      context.outbox.send(params.peer, params.message);
    },
    countRefused: assign({ stats: ({ context }) => ({ ...context.stats, refused: context.stats.refused + 1 }) }),
    enqueueWaiter: assign({
      waiting: ({ context, event }) => {
        assertEvent(event, "session.open");
        return [
          ...context.waiting,
          { peer: event.peer, helloId: event.message.id, since: Date.now(), maxMessageSize: event.message.maxMessageSize },
        ];
      },
    }),
    /** The waiter's `waitMs` is up on the actor's clock: `wait.expired` refuses it unless a slot came first. */
    scheduleWaitExpiry: raise(
      ({ event }) => {
        assertEvent(event, "session.open");
        return { type: "wait.expired", peerKey: event.peer.key, helloId: event.message.id } as const;
      },
      { delay: "helloWait" },
    ),
    refuseExpiredWaiter: ({ context, event }) => {
      assertEvent(event, "wait.expired");
      const waiter = expiredWaiter(context, event)!;
      const { peer, message } = refusal(
        waiter.peer,
        event.helloId,
        Status.POOL_FULL,
        ErrorCode.POOL_FULL,
        `no slot came free while waiting (pool of ${context.maxPoolSize})`,
      );
      context.outbox.send(peer, message);
    },
    dropExpiredWaiter: assign({
      waiting: ({ context, event }) => {
        assertEvent(event, "wait.expired");
        return context.waiting.filter((w) => !(w.peer.key === event.peerKey && w.helloId === event.helloId));
      },
    }),
    /** A lease ran out (or a delivery buffer overflowed): the client is told why, the slot frees. */
    expireSession: ({ context, event }) => {
      assertEvent(event, "session.expired");
      const session = context.table.byPeer(event.peerKey);
      // If the client is alive after all (a long stall on its side), it learns why; a
      // client that resumes later is refused with the same reason.
      if (session) endSession(context.table, session, expiryOf(context, session, event.overflow));
    },
    countExpired: assign(({ context }) => ({
      poolSize: context.table.size,
      stats: { ...context.stats, expired: context.stats.expired + 1 },
    })),
    /** A handler ended (closed or ended): its slot frees first, then a close is acknowledged. */
    releaseSession: ({ context, event }) => {
      const done = event as unknown as DoneActorEvent<HandlerOutput>;
      const session = context.table.byActor(done.actorId);
      if (!session) return;
      dropSession(context.table, session, { code: ErrorCode.SESSION_ENDED, reason: "closed", message: "the session was closed" });
      // Free the slot first, then acknowledge: a getClient() right after
      // closeHandler() resolves must find the slot free.
      if (done.output.reason === "closed" && done.output.requestId !== undefined) {
        session.reply({ type: "session.closed", id: done.output.requestId });
      }
    },
    countPool: assign({ poolSize: ({ context }) => context.table.size }),
    // These take the session by its peer key (plain data, as an inspector shows action params).
    failRequest: ({ context }, params: { peerKey: string; id: number; message: string }) => {
      context.table.byPeer(params.peerKey)?.reply(errorReply(params.id, ErrorCode.HANDLER_CRASHED, params.message));
    },
    endSession: ({ context }, params: { peerKey: string; end: SessionEnd }) => {
      const session = context.table.byPeer(params.peerKey);
      if (session) endSession(context.table, session, params.end);
    },
    stopJob: ({ context }, params: { peerKey: string }) => context.table.byPeer(params.peerKey)?.cancelJob(),
    /** A new handler for the session under the other actor id (`handler-<slot>.<1 - previous suffix>`). */
    respawnHandler: assign(({ context, spawn }, params: { peerKey: string; restarts: number[] }) => {
      const session = context.table.byPeer(params.peerKey);
      if (!session) return {};
      session.restarts = params.restarts;
      const oldActorId = session.actorId;
      session.generation += 1;
      session.actorId = actorIdOf(session);
      spawnHandler(context, spawn as Spawner, session);
      context.table.rekey(session, oldActorId);
      return { stats: { ...context.stats, restarts: context.stats.restarts + 1 } };
    }),
    /** The gateway stops: every session ends (its handler too), every waiter is refused. */
    endAllSessions: ({ context, event }) => {
      assertEvent(event, "shutdown");
      for (const session of context.table.all()) {
        session.ref?.send({ type: "session.end", code: event.code, reason: event.reason });
        endSession(context.table, session, { code: event.code, reason: "stopped", message: event.reason });
      }
    },
    refuseAllWaiters: ({ context, event }) => {
      assertEvent(event, "shutdown");
      for (const waiter of context.waiting) {
        context.outbox.send(waiter.peer, {
          type: "refused",
          id: waiter.helloId,
          status: Status.POOL_FULL,
          code: event.code,
          message: event.reason,
        });
      }
    },
  },
});

export const supervisorMachine = supervisorSetup
  // Actions that enqueue the ones above by name (typed only once those exist).
  .extend({
    actions: {
      /** Hands freed slots to waiting hellos, oldest first. */
      admitWaiters: supervisorSetup.enqueueActions(({ context, enqueue }) => {
        const admitted = context.waiting.slice(0, Math.max(0, context.maxPoolSize - context.table.size));
        if (admitted.length === 0) return;
        for (const waiter of admitted) {
          enqueue({ type: "spawnSession", params: waiter });
          enqueue({ type: "welcome", params: waiter });
        }
        enqueue.assign(({ context }) => ({
          waiting: context.waiting.slice(admitted.length),
          stats: { ...context.stats, waited: context.stats.waited + admitted.length },
        }));
      }),
      /**
       * A handler crashed: restarted in its session while the budget allows
       * (`maxRestarts` within `restartWindowMs`), else its session ends. The call
       * in flight fails with HANDLER_CRASHED either way.
       */
      superviseCrash: supervisorSetup.enqueueActions(({ context, event, enqueue }) => {
        const failed = event as unknown as ErrorActorEvent;
        const session = context.table.byActor(failed.actorId);
        if (!session) return;
        const reason = describeThrown(failed.error).message;
        const peerKey = session.peer.key;
        const inflight = session.inflight;
        const now = Date.now();
        const recent = session.restarts.filter((t: number) => now - t < context.restartWindowMs);
        if (recent.length >= context.maxRestarts) {
          if (inflight !== undefined)
            enqueue({ type: "failRequest", params: { peerKey, id: inflight, message: `handler ${session.handlerId} crashed: ${reason}` } });
          enqueue({
            type: "endSession",
            params: {
              peerKey,
              end: {
                code: ErrorCode.SESSION_ENDED,
                reason: "crashed",
                message: `handler ${session.handlerId} crashed ${context.maxRestarts + 1} times within ${context.restartWindowMs} ms: ${reason}`,
              },
            },
          });
          enqueue.assign(({ context }) => ({
            poolSize: context.table.size,
            stats: { ...context.stats, crashedOut: context.stats.crashedOut + 1 },
          }));
          return;
        }
        enqueue({ type: "stopJob", params: { peerKey } });
        enqueue({ type: "respawnHandler", params: { peerKey, restarts: [...recent, now] } });
        if (inflight !== undefined)
          enqueue({
            type: "failRequest",
            params: { peerKey, id: inflight, message: `handler ${session.handlerId} crashed and was restarted: ${reason}` },
          });
      }),
    },
  })
  .createMachine({
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
        description: "Serving the pool: hellos get a handler while a slot is free; the lease sweeper ends silent sessions.",
        invoke: { src: "leaseSweeper", input: ({ context }) => ({ table: context.table, livenessMs: context.livenessMs }) },
        initial: "accepting",
        states: {
          accepting: {
            description: "A slot is free: a hello gets a handler and a welcome.",
            always: { guard: "isPoolFull", target: "full" },
            on: {
              "session.open": [
                { guard: "isRepeatHello", actions: { type: "welcome", params: admissionOf } },
                { guard: "isTakenHello", actions: { type: "refuse", params: takenRefusal } },
                { guard: "isWrongVersion", actions: { type: "refuse", params: versionRefusal } },
                {
                  actions: [
                    { type: "spawnSession", params: admissionOf },
                    { type: "welcome", params: admissionOf },
                  ],
                },
              ],
            },
          },
          full: {
            description: "Every slot is taken: a hello with waitMs queues for the next free slot (oldest first), any other is refused 503.",
            always: { guard: "hasFreeSlotAndNoWaiter", target: "accepting" },
            on: {
              "session.open": [
                { guard: "isRepeatHello", actions: { type: "welcome", params: admissionOf } },
                { guard: "isTakenHello", actions: { type: "refuse", params: takenRefusal } },
                { guard: "isWrongVersion", actions: { type: "refuse", params: versionRefusal } },
                { guard: "mayWait", actions: ["enqueueWaiter", "scheduleWaitExpiry"] },
                { actions: [{ type: "refuse", params: fullRefusal }, "countRefused"] },
              ],
              "wait.expired": { guard: "isWaiting", actions: ["refuseExpiredWaiter", "dropExpiredWaiter", "countRefused"] },
            },
          },
        },
        on: {
          "session.expired": {
            actions: [
              stopChild(({ context, event }) => context.table.byPeer(event.peerKey)?.actorId ?? ""),
              "expireSession",
              "countExpired",
              "admitWaiters",
            ],
          },
          // stopChild also drops the ended actor from `children`: without it they pile up.
          "xstate.done.actor.*": {
            actions: [stopChild(({ event }) => (event as DoneActorEvent).actorId), "releaseSession", "countPool", "admitWaiters"],
          },
          "xstate.error.actor.*": {
            actions: [stopChild(({ event }) => (event as ErrorActorEvent).actorId), "superviseCrash", "admitWaiters"],
          },
          shutdown: { target: "stopped", actions: ["endAllSessions", "refuseAllWaiters", assign({ waiting: [] })] },
        },
      },
      stopped: {
        description: "The gateway stopped: every session was ended and every waiter refused.",
        type: "final",
        entry: assign({ poolSize: 0 }),
      },
    },
  });

export type SupervisorActorRef = ActorRefFrom<typeof supervisorMachine>;
export type SupervisorSnapshot = SnapshotFrom<typeof supervisorMachine>;
