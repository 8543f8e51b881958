/**
 * The machines over the in-memory transport: no sockets, no ports, fast.
 * The same Gateway/Controller classes, only the wire differs.
 */
import { describe, expect, it, onTestFinished } from "vitest";
import { SimulatedClock, createActor, type AnyActorRef, type InspectionEvent } from "xstate";
import { controllerMachine } from "../actors/controller.js";
import { gatewayMachine } from "../actors/gateway.js";
import { handlerMachine, type HandlerActorRef, type HandlerHooks } from "../actors/handler.js";
import { Session, SessionTable, type Outbox } from "../actors/session.js";
import { SubroutineRegistry } from "../actors/subroutines.js";
import { supervisorMachine } from "../actors/supervisor.js";
import type { HelloMessage } from "../protocol/index.js";
import { Controller, ErrorCode, Gateway } from "../runtime/index.js";
import { MemoryHub, PROTOCOL_VERSION, type GatewayMessage, type Peer, type ServerTransport } from "../runtime/internal.js";
import { stateName, untilSnapshot } from "../runtime/wait.js";
import { within } from "./helpers.js";

async function memorySystem(maxPoolSize = 2): Promise<{ gw: Gateway; controller: Controller; hub: MemoryHub }> {
  const hub = new MemoryHub();
  const gw = new Gateway({ transport: hub, host: "unit", port: 1, maxPoolSize, stopGraceMs: 0 });
  gw.addSubroutine("add", (a: number, b: number) => a + b);
  gw.addSubroutine("wait", (ms: number) => new Promise((r) => setTimeout(() => r(ms), ms)));
  await gw.start();
  const controller = new Controller({ transport: hub, gateways: ["unit:1"], timeoutMs: 1_000, connectTimeoutMs: 500 });
  return { gw, controller, hub };
}

describe("machines over the in-memory transport", () => {
  it("plain calls take no machine transition on either end; an async call shows busy with its request on both", async () => {
    const hub = new MemoryHub();
    const events = { gateway: 0, controller: 0 };
    const gw = new Gateway({
      transport: hub,
      host: "unit",
      port: 1,
      stopGraceMs: 0,
      inspect: (e) => {
        if (e.type === "@xstate.event") events.gateway++;
      },
    });
    gw.addSubroutine("add", (a: number, b: number) => a + b);
    gw.addSubroutine("wait", (ms: number) => new Promise((r) => setTimeout(() => r(ms), ms)));
    await gw.start();
    const controller = new Controller({
      transport: hub,
      gateways: ["unit:1"],
      timeoutMs: 1_000,
      connectTimeoutMs: 500,
      inspect: (e) => {
        if (e.type === "@xstate.event") events.controller++;
      },
    });
    const client = await controller.getClient();
    expect(client.state).toBe("ready");
    const clientStates: string[] = [];
    client.actor.subscribe((s) => clientStates.push(String(s.value)));
    const before = { ...events };
    for (let i = 0; i < 50; i++) {
      await expect(client.getSubroutineBatch("add", [i, 1])).resolves.toBe(i + 1);
      await expect(client.ping(i)).resolves.toBe(i);
    }
    // 100 requests answered: not one event reached a machine on either side, no client snapshot.
    expect(events).toEqual(before);
    expect(clientStates).toEqual([]);
    expect(gw.snapshot().handlers[0]?.served).toBe(100);

    // An async subroutine moves the handler to busy with the request; the client shows it in flight.
    const call = client.getSubroutineBatch("wait", [20]);
    await within(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (gw.snapshot().handlers[0]?.state === "busy.batchGet") resolve();
          else setImmediate(check);
        };
        check();
      }),
      2_000,
      "handler busy",
    );
    expect(gw.snapshot().handlers[0]?.request).toMatchObject({ kind: "batchGet", name: "wait" });
    expect(client.actor.getSnapshot().context.slot.call).toMatchObject({ kind: "batchGet" });
    await expect(call).resolves.toBe(20);
    expect(client.actor.getSnapshot().context.slot.call).toBeUndefined();
    expect(clientStates).toEqual([]);
    expect(gw.snapshot().handlers[0]?.state).toBe("idle");
    expect(events.gateway).toBeGreaterThan(before.gateway);
    await controller.close();
    await gw.stop();
  });

  it("the supervisor refuses past the pool and frees on close", async () => {
    const { gw, controller } = await memorySystem(1);
    const a = await controller.getClient();
    await expect(controller.getClient()).rejects.toMatchObject({ code: ErrorCode.POOL_FULL });
    await a.closeHandler();
    const b = await controller.getClient();
    await expect(b.getSubroutineBatch("add", [2, 3])).resolves.toBe(5);
    await controller.close();
    await gw.stop();
  });

  it("stop refuses new clients and ends live sessions with a typed error", async () => {
    const { gw, controller } = await memorySystem();
    const a = await controller.getClient();
    await gw.stop();
    await expect(a.ping()).rejects.toMatchObject({ code: expect.stringMatching(/SESSION_ENDED|CLOSED/) });
    await expect(controller.getClient()).rejects.toMatchObject({ code: expect.stringMatching(/TIMEOUT|GATEWAY_STOPPING|SESSION_ENDED/) });
    await controller.close();
  });
});

/** Records each actor's state names as its snapshots change (one entry per change), from an inspect callback. */
class StateRecorder {
  readonly states = new Map<string, string[]>();
  readonly #waiters: { id: string; state: string; resolve: () => void }[] = [];

  readonly inspect = (event: InspectionEvent): void => {
    if (event.type !== "@xstate.snapshot") return;
    const snapshot = event.snapshot as { value?: unknown };
    if (snapshot.value === undefined) return; // not a machine (a promise or callback actor)
    const id = (event.actorRef as AnyActorRef).id;
    const state = stateName(snapshot.value);
    const seen = this.states.get(id) ?? [];
    if (seen.at(-1) !== state) seen.push(state);
    this.states.set(id, seen);
    for (const waiter of this.#waiters.filter((w) => w.id === id && w.state === state)) {
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  };

  of(id: string): string[] {
    return this.states.get(id) ?? [];
  }

  /** Resolves when actor `id` is in `state` (now, or on a later change); bounded. */
  reach(id: string, state: string): Promise<void> {
    if (this.of(id).at(-1) === state) return Promise.resolve();
    return within(new Promise<void>((resolve) => this.#waiters.push({ id, state, resolve })), 2_000, `${id} in ${state}`);
  }
}

describe("each machine's exact state sequence", () => {
  it("gateway, supervisor, handler and controller - a representative run, every state in order", async () => {
    const hub = new MemoryHub();
    const gatewaySide = new StateRecorder();
    const clientSide = new StateRecorder();
    const gw = new Gateway({ transport: hub, host: "unit", port: 1, maxPoolSize: 1, stopGraceMs: 1_000, inspect: gatewaySide.inspect });
    gw.addSubroutine("count", function* (n: number) {
      for (let i = 0; i < n; i++) yield [i, new Uint8Array([i])];
    });
    await gw.start();
    const controller = new Controller({
      transport: hub,
      gateways: ["unit:1"],
      timeoutMs: 1_000,
      connectTimeoutMs: 500,
      inspect: clientSide.inspect,
    });
    const client = await controller.getClient();
    const items: number[] = [];
    for await (const [ident] of client.stream("count", [3])) items.push(ident);
    expect(items).toEqual([0, 1, 2]);
    // The handler leaves busy when its job reports the end, which may come just after the client's last item.
    await gatewaySide.reach("handler-1.0", "idle");
    await client.closeHandler();
    await controller.close();
    await gw.stop();

    expect(gatewaySide.of("gateway")).toEqual(["idle", "starting", "running", "stopping.draining", "stopping.closing", "stopped"]);
    expect(gatewaySide.of("supervisor")).toEqual(["running.accepting", "running.full", "running.accepting", "stopped"]);
    expect(gatewaySide.of("handler-1.0")).toEqual(["idle", "busy.streaming", "idle", "closed"]);
    expect(clientSide.of("controller")).toEqual(["open", "closed"]);
  });
});

/** An outbox that only records what the supervisor sends, by peer. */
function recordingOutbox(): Outbox & { sent: { peer: string; message: GatewayMessage }[] } {
  const sent: { peer: string; message: GatewayMessage }[] = [];
  return {
    sent,
    send: (peer, message) => {
      sent.push({ peer: peer.key, message });
      return true;
    },
    trySend: () => undefined,
    countRefusal: () => undefined,
    write: () => undefined,
  };
}

function peer(key: string): Peer {
  return { key, id: new TextEncoder().encode(key) };
}

function hello(id: number, waitMs?: number): HelloMessage {
  return { type: "hello", id, v: PROTOCOL_VERSION, ...(waitMs === undefined ? {} : { waitMs }) };
}

/** The supervisor alone, on a simulated clock: no transport, no real time. */
function supervisorAlone(maxPoolSize: number, options: { maxRestarts?: number; hooks?: HandlerHooks } = {}) {
  const clock = new SimulatedClock();
  const outbox = recordingOutbox();
  const table = new SessionTable();
  const recorder = new StateRecorder();
  const actor = createActor(supervisorMachine, {
    id: "supervisor",
    clock,
    inspect: recorder.inspect,
    // A lease far longer than the test: the sweeper (real time, see ARCHITECTURE "Lease arithmetic") never fires.
    input: {
      table,
      registry: new SubroutineRegistry(),
      outbox,
      maxPoolSize,
      maxRestarts: options.maxRestarts ?? 3,
      restartWindowMs: 60_000,
      livenessMs: 3_600_000,
      hooks: options.hooks,
    },
  });
  actor.start();
  onTestFinished(() => {
    actor.stop();
  });
  const kinds = (key: string) => outbox.sent.filter((s) => s.peer === key).map((s) => s.message.type);
  return { clock, outbox, table, actor, recorder, kinds };
}

describe("the supervisor alone on a simulated clock", () => {
  it("a hello that may wait is refused 503 exactly when its waitMs is up on the actor's clock", () => {
    const { clock, actor, outbox, recorder, kinds } = supervisorAlone(1);
    actor.send({ type: "session.open", peer: peer("a"), message: hello(1) });
    actor.send({ type: "session.open", peer: peer("b"), message: hello(2, 1_000) });
    actor.send({ type: "session.open", peer: peer("c"), message: hello(3, 500) });
    expect(kinds("a")).toEqual(["welcome"]);
    expect(actor.getSnapshot().context.waiting).toHaveLength(2);
    clock.increment(499);
    expect(kinds("c")).toEqual([]);
    clock.increment(1);
    expect(kinds("c")).toEqual(["refused"]);
    clock.increment(499);
    expect(kinds("b")).toEqual([]);
    clock.increment(1);
    expect(kinds("b")).toEqual(["refused"]);
    expect(outbox.sent.at(-1)?.message).toMatchObject({ type: "refused", id: 2, status: 503, code: ErrorCode.POOL_FULL });
    expect(actor.getSnapshot().context.waiting).toEqual([]);
    expect(actor.getSnapshot().context.stats).toMatchObject({ accepted: 1, refused: 2, waited: 0 });
    expect(recorder.of("supervisor")).toEqual(["running.accepting", "running.full"]);
  });

  it("a slot freed while a hello waits goes to it; its expiry then refuses nobody", () => {
    const { clock, actor, table, recorder, kinds } = supervisorAlone(1);
    actor.send({ type: "session.open", peer: peer("a"), message: hello(1) });
    actor.send({ type: "session.open", peer: peer("b"), message: hello(2, 1_000) });
    // The client of session a closes it: its handler ends, the supervisor frees the slot and admits b.
    table.byPeer("a")!.ref!.send({ type: "session.close", message: { type: "session.close", id: 3 } });
    expect(kinds("b")).toEqual(["welcome"]);
    expect(table.byPeer("b")?.actorId).toBe("handler-1.0");
    clock.increment(1_000);
    expect(kinds("b")).toEqual(["welcome"]);
    expect(actor.getSnapshot().context.stats).toMatchObject({ accepted: 2, refused: 0, waited: 1 });
    expect(recorder.of("supervisor")).toEqual(["running.accepting", "running.full"]);
    // b's handler reuses the freed slot's actor id (the recorder, keyed by id, would mix the two handlers).
    expect((table.byPeer("b")?.ref as HandlerActorRef | undefined)?.getSnapshot().value).toBe("idle");
  });
});

describe("the supervisor alone: crashes", () => {
  it("a crash within the budget restarts the handler under the other id and fails the call in flight; past it the session ends", () => {
    // Test hooks make `test.crash` throw inside the handler machine: a crash, not a subroutine error.
    const { actor, table, outbox } = supervisorAlone(2, { maxRestarts: 1, hooks: {} });
    actor.send({ type: "session.open", peer: peer("a"), message: hello(1) });
    const session = table.byPeer("a")!;
    session.begin(9);
    session.ref!.send({ type: "test.crash", reason: "boom" });
    expect(session.actorId).toBe("handler-1.1");
    expect(outbox.sent.at(-1)?.message).toMatchObject({ type: "error", id: 9, code: ErrorCode.HANDLER_CRASHED });
    expect(actor.getSnapshot().context.stats).toMatchObject({ restarts: 1, crashedOut: 0 });
    expect(Object.keys(actor.getSnapshot().children).filter((id) => id.startsWith("handler-"))).toEqual(["handler-1.1"]);

    session.ref!.send({ type: "test.crash", reason: "boom again" });
    expect(outbox.sent.at(-1)?.message).toMatchObject({ type: "session.ended", reason: "crashed" });
    expect(table.byPeer("a")).toBeUndefined();
    expect(actor.getSnapshot().context).toMatchObject({ poolSize: 0, stats: { restarts: 1, crashedOut: 1 } });
  });
});

describe("the machines read like statecharts", () => {
  it("every state of the gateway, supervisor, handler and controller machines has a description (the inspector shows it)", () => {
    type Node = { id: string; description?: string; states: Record<string, Node> };
    const undescribed = (node: Node): string[] =>
      Object.values(node.states).flatMap((child) => [...(child.description ? [] : [child.id]), ...undescribed(child)]);
    const machines = [gatewayMachine, supervisorMachine, handlerMachine, controllerMachine];
    expect(machines.flatMap((machine) => undescribed(machine.root as unknown as Node))).toEqual([]);
  });
});

describe("untilSnapshot (xstate's waitFor plus what it lacks)", () => {
  it("rejects at once for an actor that already stopped, where waitFor alone would wait forever", async () => {
    const actor = createActor(supervisorMachine, {
      input: {
        table: new SessionTable(),
        registry: new SubroutineRegistry(),
        outbox: recordingOutbox(),
        maxPoolSize: 1,
        maxRestarts: 0,
        restartWindowMs: 1,
        livenessMs: 3_600_000,
      },
    });
    actor.start();
    actor.stop();
    await expect(untilSnapshot(actor, (s) => s.value === "stopped")).rejects.toThrow(/ended \(stopped\)/);
  });
});

describe("the gateway alone on a simulated clock", () => {
  it("stop waits for the call in flight until stopGraceMs is up on the actor's clock, then closes", async () => {
    const clock = new SimulatedClock();
    const recorder = new StateRecorder();
    const transport: ServerTransport = {
      listen: async () => "mem://alone",
      send: () => undefined,
      flush: async () => undefined,
      close: async () => undefined,
      stats: () => ({ handshakes: 0, authFailures: 0, protocolFailures: 0 }),
    };
    const actor = createActor(gatewayMachine, {
      id: "gateway",
      clock,
      inspect: recorder.inspect,
      input: {
        transport,
        registry: new SubroutineRegistry(),
        maxPoolSize: 1,
        maxRestarts: 0,
        restartWindowMs: 1,
        livenessMs: 3_600_000,
        maxEnvelopeBytes: 1 << 20,
        stopGraceMs: 5_000,
        allowRemoteClose: false,
      },
    });
    actor.start();
    onTestFinished(() => {
      actor.stop();
    });
    actor.send({ type: "start" });
    await within(
      untilSnapshot(actor, (s) => s.value === "running"),
      2_000,
      "gateway running",
    );
    // A session with a request in flight: draining must wait for it.
    const { table, outbox } = actor.getSnapshot().context;
    const session = new Session(1, peer("a"), outbox);
    table.add(session);
    session.begin(7);
    actor.send({ type: "stop" });
    expect(actor.getSnapshot().value).toEqual({ stopping: "draining" });
    clock.increment(4_999);
    expect(actor.getSnapshot().value).toEqual({ stopping: "draining" });
    clock.increment(1);
    await within(
      untilSnapshot(actor, (s) => s.status === "done"),
      2_000,
      "gateway stopped",
    );
    expect(recorder.of("gateway")).toEqual(["idle", "starting", "running", "stopping.draining", "stopping.closing", "stopped"]);
  });
});
