import { describe, expect, it, onTestFinished } from "vitest";
import {
  Actor,
  assign,
  createActor,
  sendTo,
  setup,
  spawnChild,
  type ActorRefFrom,
  type ErrorActorEvent,
  type InspectionEvent,
} from "xstate";
import { ErrorCode, Gateway, strToBytes, type Kwargs, type SwarmnetError } from "../runtime/index.js";
import { MemoryHub } from "../runtime/internal.js";
import { swarmClientMachine, type SwarmClientCommand, type SwarmClientEmitted, type SwarmClientInput } from "../runtime/actors.js";
import { controllerFor, startGateway, until, within } from "./helpers.js";

/**
 * A user's machine that owns one swarmnet client actor: it forwards commands
 * to it, records every `swarmnet.*` event it gets back, and ends up in
 * `failed` (the child's error) or `finished` (the child closed).
 */
const appMachine = setup({
  types: {
    input: {} as { client: SwarmClientInput },
    context: {} as { client: SwarmClientInput; log: SwarmClientEmitted[]; error: SwarmnetError | undefined },
    events: {} as
      SwarmClientEmitted | { type: "forward"; command: SwarmClientCommand } | { type: "leave" } | { type: "retry"; endpoint: string },
  },
  actors: { swarm: swarmClientMachine },
}).createMachine({
  id: "app",
  context: ({ input }) => ({ client: input.client, log: [], error: undefined }),
  initial: "online",
  states: {
    online: {
      invoke: {
        id: "car",
        src: "swarm",
        input: ({ context }) => context.client,
        onError: { target: "failed", actions: assign({ error: ({ event }) => (event as ErrorActorEvent<SwarmnetError>).error }) },
        onDone: "finished",
      },
      on: {
        "swarmnet.*": { actions: assign({ log: ({ context, event }) => [...context.log, event as SwarmClientEmitted] }) },
        forward: { actions: sendTo("car", ({ event }) => event.command) },
        leave: "offline",
      },
    },
    offline: {},
    // Restarting is re-entering the state that invokes the client actor.
    failed: { on: { retry: { target: "online", actions: assign({ client: ({ event }) => ({ endpoint: event.endpoint }) }) } } },
    finished: { type: "final" },
  },
});

type App = ActorRefFrom<typeof appMachine>;

function startApp(client: SwarmClientInput, inspect?: (event: InspectionEvent) => void): App {
  const app = createActor(appMachine, { id: "app", input: { client }, ...(inspect ? { inspect } : {}) });
  onTestFinished(() => void app.stop());
  app.start();
  return app;
}

/** Resolves with the app's snapshot once `predicate` holds; bounded. */
async function untilApp(app: App, predicate: (s: ReturnType<App["getSnapshot"]>) => boolean, what: string, ms = 5_000) {
  await until(
    () => predicate(app.getSnapshot()),
    (wake) => {
      const sub = app.subscribe({ next: wake, error: wake, complete: wake });
      return () => sub.unsubscribe();
    },
    ms,
    what,
  );
  return app.getSnapshot();
}

function eventsOf<T extends SwarmClientEmitted["type"]>(app: App, type: T): Array<Extract<SwarmClientEmitted, { type: T }>> {
  return app.getSnapshot().context.log.filter((e): e is Extract<SwarmClientEmitted, { type: T }> => e.type === type);
}

function answered(app: App, requestId: string | number): SwarmClientEmitted | undefined {
  return app
    .getSnapshot()
    .context.log.find(
      (e) => (e.type === "swarmnet.result" || e.type === "swarmnet.error" || e.type === "swarmnet.end") && e.requestId === requestId,
    );
}

/** The gateway's pool size, waited on through the gateway's own inspection events. */
function poolWatcher(): { inspect: (event: InspectionEvent) => void; untilPool: (gw: Gateway, size: number) => Promise<void> } {
  const wakers = new Set<() => void>();
  return {
    inspect: () => {
      for (const wake of wakers) wake();
    },
    untilPool: (gw, size) =>
      until(
        () => gw.snapshot().supervisor.poolSize === size,
        (wake) => {
          wakers.add(wake);
          return () => wakers.delete(wake);
        },
        5_000,
        `pool size ${size}`,
      ),
  };
}

async function streamingGateway(pool = poolWatcher()) {
  const state = { finallyRan: 0, steering: [] as string[] };
  const gw = await startGateway({ inspect: pool.inspect, maxPoolSize: 2 });
  gw.addSubroutine("echo", (x: unknown) => x);
  gw.addSubroutine("steer", (angle: number, kwargs: Kwargs & { buffer: Uint8Array }) => {
    state.steering.push(`${angle}:${Buffer.from(kwargs.buffer).toString()}`);
    return angle;
  });
  gw.addSubroutine("count", function* (n: number) {
    for (let i = 0; i < n; i++) yield [i, { reading: i * 10 }];
  });
  gw.addSubroutine("camera", async function* () {
    try {
      for (let i = 0; ; i++) {
        await new Promise((r) => setTimeout(r, 2));
        yield [i, new Uint8Array(64).fill(i & 0xff)];
      }
    } finally {
      state.finallyRan++;
    }
  });
  gw.addSubroutine("broken", function* () {
    yield [0, "first"];
    throw new Error("sensor unplugged");
  });
  return { gw, state, pool };
}

describe("composable client actor (swarmnet/actors)", () => {
  it("a parent machine drives a client actor through call, send, ping, stream, abort and close, all as events", async () => {
    const { gw, state, pool } = await streamingGateway();
    const app = startApp({ endpoint: gw.endpoint, timeoutMs: 5_000 });
    await untilApp(app, () => eventsOf(app, "swarmnet.connected").length === 1, "connected");
    expect(eventsOf(app, "swarmnet.connected")[0]).toMatchObject({ clientId: "car", endpoint: gw.endpoint, handlerId: expect.any(Number) });

    // Sent back to back: the actor serves them one at a time, in order.
    app.send({ type: "forward", command: { type: "call", requestId: "c1", name: "echo", args: [{ speed: 12 }] } });
    app.send({ type: "forward", command: { type: "send", requestId: "s1", name: "steer", buffer: strToBytes("left"), args: [-15] } });
    app.send({ type: "forward", command: { type: "ping", requestId: "p1", data: "hi" } });
    app.send({ type: "forward", command: { type: "call", requestId: "missing", name: "no_such" } });
    await untilApp(app, () => answered(app, "missing") !== undefined, "four answers");
    expect(answered(app, "c1")).toMatchObject({ type: "swarmnet.result", value: { speed: 12 } });
    expect(answered(app, "s1")).toMatchObject({ type: "swarmnet.result", value: -15 });
    expect(answered(app, "p1")).toMatchObject({ type: "swarmnet.result", value: "hi" });
    expect(answered(app, "missing")).toMatchObject({ type: "swarmnet.error", code: ErrorCode.SUBROUTINE_NOT_FOUND });
    expect(state.steering).toEqual(["-15:left"]);
    const order = app.getSnapshot().context.log.flatMap((e) => ("requestId" in e ? [e.requestId] : []));
    expect(order).toEqual(["c1", "s1", "p1", "missing"]);

    // A finite stream: every item as an event, in order, then its end.
    app.send({ type: "forward", command: { type: "stream", requestId: "n", name: "count", args: [50], window: 8 } });
    await untilApp(app, () => answered(app, "n") !== undefined, "stream end");
    const items = eventsOf(app, "swarmnet.item").filter((e) => e.requestId === "n");
    expect(items.map((e) => e.ident)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(items[49]?.buffer).toEqual({ reading: 490 });
    expect(answered(app, "n")).toMatchObject({ type: "swarmnet.end", count: 50, aborted: false });

    // An endless stream, aborted by the parent: the generator's finally runs on the gateway.
    app.send({ type: "forward", command: { type: "stream", requestId: "cam", name: "camera", window: 4 } });
    await untilApp(app, () => eventsOf(app, "swarmnet.item").filter((e) => e.requestId === "cam").length >= 5, "camera frames");
    app.send({ type: "forward", command: { type: "abort" } });
    await untilApp(app, () => answered(app, "cam") !== undefined, "abort acknowledged");
    expect(answered(app, "cam")).toMatchObject({ type: "swarmnet.end", aborted: true });
    expect(state.finallyRan).toBe(1);
    const frame = eventsOf(app, "swarmnet.item").find((e) => e.requestId === "cam")?.buffer;
    expect(frame).toBeInstanceOf(Uint8Array);

    // A stream whose generator throws: the items before the throw, then an error event; the client goes on.
    app.send({ type: "forward", command: { type: "stream", requestId: "b", name: "broken" } });
    app.send({ type: "forward", command: { type: "call", requestId: "after", name: "echo", args: ["still here"] } });
    await untilApp(app, () => answered(app, "after") !== undefined, "call after a broken stream");
    expect(
      eventsOf(app, "swarmnet.item")
        .filter((e) => e.requestId === "b")
        .map((e) => e.buffer),
    ).toEqual(["first"]);
    expect(answered(app, "b")).toMatchObject({
      type: "swarmnet.error",
      code: ErrorCode.REMOTE,
      message: expect.stringContaining("sensor unplugged"),
    });
    expect(answered(app, "after")).toMatchObject({ type: "swarmnet.result", value: "still here" });

    // Close: the handler is freed on the gateway, the parent sees the child done.
    expect(gw.snapshot().supervisor.poolSize).toBe(1);
    app.send({ type: "forward", command: { type: "close" } });
    const done = await untilApp(app, (s) => s.value === "finished", "parent finished");
    expect(done.context.log.at(-1)).toMatchObject({ type: "swarmnet.closed", clientId: "car" });
    await pool.untilPool(gw, 0);
  });

  it("bad commands are answered with an error event, not a crash; requests without an id get 1, 2, ...", async () => {
    const { gw } = await streamingGateway();
    const app = startApp({ endpoint: gw.endpoint });
    app.send({ type: "forward", command: { type: "call", name: "" } });
    app.send({ type: "forward", command: { type: "send", name: "steer", buffer: "not bytes" as unknown as Uint8Array } });
    app.send({ type: "forward", command: { type: "call", name: "echo", args: [7] } });
    await untilApp(app, () => answered(app, 3) !== undefined, "third answer");
    expect(answered(app, 1)).toMatchObject({ type: "swarmnet.error", code: ErrorCode.INVALID_ARGUMENT });
    expect(answered(app, 2)).toMatchObject({ type: "swarmnet.error", code: ErrorCode.INVALID_ARGUMENT });
    expect(answered(app, 3)).toMatchObject({ type: "swarmnet.result", value: 7 });
    expect(app.getSnapshot().value).toEqual("online");
  });

  it("bad input - the child fails at once and the parent gets InvalidArgumentError", async () => {
    const app = startApp({ endpoint: "udp://nowhere:1" });
    const failed = await untilApp(app, (s) => s.value === "failed", "parent failed");
    expect(failed.context.error).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
  });

  it("emitted events - a client actor with no parent is observed with actor.on()", async () => {
    const { gw } = await streamingGateway();
    const client = createActor(swarmClientMachine, { id: "solo", input: { endpoint: gw.endpoint } });
    onTestFinished(() => void client.stop());
    const seen: SwarmClientEmitted[] = [];
    client.on("*", (e) => void seen.push(e));
    client.start();
    client.send({ type: "stream", requestId: "s", name: "count", args: [3] });
    await until(
      () => seen.some((e) => e.type === "swarmnet.end"),
      (wake) => {
        const sub = client.on("*", wake);
        return () => sub.unsubscribe();
      },
      5_000,
      "end of stream",
    );
    client.send({ type: "close" });
    await until(
      () => client.getSnapshot().status === "done",
      (wake) => {
        const sub = client.subscribe({ next: wake, complete: wake, error: wake });
        return () => sub.unsubscribe();
      },
      5_000,
      "solo client done",
    );
    expect(seen.map((e) => e.type)).toEqual([
      "swarmnet.connected",
      "swarmnet.item",
      "swarmnet.item",
      "swarmnet.item",
      "swarmnet.end",
      "swarmnet.closed",
    ]);
    expect(client.getSnapshot().output).toMatchObject({ endpoint: gw.endpoint, answered: 1 });
  });

  it("child failure - a full pool reaches the parent as xstate.error.actor with PoolFullError", async () => {
    const gw = await startGateway({ maxPoolSize: 1 });
    const holder = await controllerFor(gw).getClient();
    expect(holder.handlerId).toBeDefined();
    const app = startApp({ endpoint: gw.endpoint });
    const failed = await untilApp(app, (s) => s.value === "failed", "parent failed");
    expect(failed.context.error).toMatchObject({ code: ErrorCode.POOL_FULL });
    expect(failed.children["car"]).toBeUndefined();
  });

  it("child failure - no gateway behind the endpoint: ConnectionRefusedError (or TimeoutError if the refusal comes after connectTimeoutMs)", async () => {
    const gw = await startGateway();
    const endpoint = gw.endpoint;
    await gw.stop();
    const app = startApp({ endpoint, connectTimeoutMs: 200 });
    const failed = await untilApp(app, (s) => s.value === "failed", "parent failed");
    expect(failed.context.error).toMatchObject({
      code: expect.stringMatching(new RegExp(`^(${ErrorCode.CONNECTION_REFUSED}|${ErrorCode.TIMEOUT})$`)),
    });
  });

  it("child failure - the gateway stopping mid-session fails the child; the parent restarts it against the next gateway", async () => {
    const { gw } = await streamingGateway();
    const app = startApp({ endpoint: gw.endpoint });
    await untilApp(app, () => eventsOf(app, "swarmnet.connected").length === 1, "connected");
    await within(gw.stop(), 10_000, "gateway stop");
    const failed = await untilApp(app, (s) => s.value === "failed", "parent failed");
    expect(failed.context.error).toMatchObject({ code: ErrorCode.SESSION_ENDED });
    expect(failed.children["car"]).toBeUndefined();

    const next = await startGateway();
    next.addSubroutine("echo", (x: unknown) => x);
    app.send({ type: "retry", endpoint: next.endpoint });
    app.send({ type: "forward", command: { type: "call", requestId: "again", name: "echo", args: ["back"] } });
    await untilApp(app, () => answered(app, "again") !== undefined, "answer after the restart");
    expect(answered(app, "again")).toMatchObject({ type: "swarmnet.result", value: "back" });
    expect(eventsOf(app, "swarmnet.connected").map((e) => e.endpoint)).toEqual([gw.endpoint, next.endpoint]);
  });

  it("over the in-memory transport - the same actor, no sockets: the transport comes in the input", async () => {
    const hub = new MemoryHub();
    const gw = new Gateway({ transport: hub, host: "unit", port: 1, stopGraceMs: 0 });
    onTestFinished(() => within(gw.stop(), 5_000, "gateway stop"));
    gw.addSubroutine("add", (a: number, b: number) => a + b);
    await gw.start();
    const app = startApp({ endpoint: "unit:1", transport: hub });
    app.send({ type: "forward", command: { type: "call", requestId: "sum", name: "add", args: [2, 3] } });
    await untilApp(app, () => answered(app, "sum") !== undefined, "sum");
    expect(answered(app, "sum")).toMatchObject({ type: "swarmnet.result", value: 5 });
    app.send({ type: "forward", command: { type: "close" } });
    await untilApp(app, (s) => s.value === "finished", "finished");
    expect(gw.snapshot().supervisor.poolSize).toBe(0);
  });

  it("stopping an idle child (the parent leaves the state that invoked it) closes its handler: the pool slot comes back at once", async () => {
    const { gw, pool } = await streamingGateway();
    const app = startApp({ endpoint: gw.endpoint });
    await untilApp(app, () => eventsOf(app, "swarmnet.connected").length === 1, "connected");
    expect(gw.snapshot().supervisor.poolSize).toBe(1);
    app.send({ type: "leave" });
    expect(app.getSnapshot().children["car"]).toBeUndefined();
    // Well inside the session lease (15 s): the actor said goodbye on its way out.
    await pool.untilPool(gw, 0);
    expect(gw.snapshot().supervisor.stats).toMatchObject({ expired: 0 });
  });

  it("stopping a streaming child closes its handler and stops the generator on the gateway", async () => {
    const { gw, state, pool } = await streamingGateway();
    const app = startApp({ endpoint: gw.endpoint });
    app.send({ type: "forward", command: { type: "stream", requestId: "cam", name: "camera", window: 4 } });
    await untilApp(app, () => eventsOf(app, "swarmnet.item").length >= 3, "streaming");
    expect(gw.snapshot().supervisor.poolSize).toBe(1);
    app.send({ type: "leave" });
    expect(app.getSnapshot().value).toBe("offline");
    await pool.untilPool(gw, 0);
    await until(
      () => state.finallyRan === 1,
      (wake) => {
        const timer = setInterval(wake, 5);
        return () => clearInterval(timer);
      },
      5_000,
      "generator finally",
    );
  });

  it("with a controller - connects the way getClient() does: a full gateway is skipped for the next", async () => {
    const full = await startGateway({ maxPoolSize: 1 });
    const free = await startGateway();
    free.addSubroutine("where", () => "free");
    const controller = controllerFor([full, free]);
    await controller.getClient({ endpoint: full.endpoint });
    const app = startApp({ controller });
    app.send({ type: "forward", command: { type: "call", requestId: "w", name: "where" } });
    await untilApp(app, () => answered(app, "w") !== undefined, "answer");
    expect(answered(app, "w")).toMatchObject({ type: "swarmnet.result", value: "free" });
    expect(eventsOf(app, "swarmnet.connected")[0]?.endpoint).toBe(free.endpoint);
  });

  it("spawned - a parent spawns three client actors and tells their answers apart by clientId", async () => {
    const gw = await startGateway({ maxPoolSize: 3 });
    gw.addSubroutine("who", (k: number) => `worker ${k}`);
    const fleet = setup({
      types: { context: {} as { answers: Record<string, unknown> }, events: {} as SwarmClientEmitted },
      actors: { swarm: swarmClientMachine },
    }).createMachine({
      context: { answers: {} },
      entry: [0, 1, 2].flatMap((k) => [
        spawnChild("swarm", { id: `worker-${k}`, input: { endpoint: gw.endpoint } }),
        sendTo(`worker-${k}`, { type: "call" as const, name: "who", args: [k] }),
      ]),
      on: {
        "swarmnet.result": {
          actions: assign({ answers: ({ context, event }) => ({ ...context.answers, [event.clientId]: event.value }) }),
        },
      },
    });
    const actor = createActor(fleet);
    onTestFinished(() => void actor.stop());
    actor.start();
    await until(
      () => Object.keys(actor.getSnapshot().context.answers).length === 3,
      (wake) => {
        const sub = actor.subscribe(wake);
        return () => sub.unsubscribe();
      },
      5_000,
      "three answers",
    );
    expect(actor.getSnapshot().context.answers).toEqual({ "worker-0": "worker 0", "worker-1": "worker 1", "worker-2": "worker 2" });
    expect(gw.snapshot().supervisor.poolSize).toBe(3); // three connections, three handlers
  });

  it("inspection - one inspect callback sees the user's machine, the client actor, its client machine and wire, with parent links", async () => {
    const { gw } = await streamingGateway();
    const parents = new Map<string, string | undefined>();
    const app = startApp({ endpoint: gw.endpoint }, (event) => {
      if (event.type === "@xstate.actor") {
        // An invoked or spawned actor carries its parent in its public options.
        const ref = event.actorRef;
        if (ref instanceof Actor) parents.set(ref.id, ref.options.parent?.id);
      }
    });
    await untilApp(app, () => eventsOf(app, "swarmnet.connected").length === 1, "connected");
    app.send({ type: "forward", command: { type: "stream", requestId: "n", name: "count", args: [3] } });
    await untilApp(app, () => answered(app, "n") !== undefined, "stream end");
    expect(parents.has("app")).toBe(true);
    expect(parents.get("app")).toBeUndefined();
    expect(parents.get("car")).toBe("app");
    expect(parents.get("client")).toBe("car");
    expect(parents.get("wire")).toBe("client");
    expect(parents.get("pump")).toBe("car");
  });
});
