import { describe, expect, it } from "vitest";
import { Actor, type InspectionEvent } from "xstate";
import { ErrorCode } from "../runtime/index.js";
import type { HandlerHooks } from "../runtime/internal.js";
import { controllerFor, startGateway, until, within } from "./helpers.js";

/** Arms a crash of one handler's next request: the fault is inside the handler machine, not a subroutine. */
function faultInjector(): { hooks: HandlerHooks; arm(handlerId: number): void } {
  const armed = new Set<number>();
  return {
    arm: (handlerId) => armed.add(handlerId),
    hooks: {
      beforeRequest({ handlerId }) {
        if (armed.delete(handlerId)) throw new Error(`injected fault in handler ${handlerId}`);
      },
    },
  };
}

describe("supervision", () => {
  it("handler crash within budget - the call in flight fails with HandlerCrashedError, the session goes on, other handlers are untouched", async () => {
    const faults = faultInjector();
    const gw = await startGateway({ testHooks: faults.hooks, maxRestarts: 2, restartWindowMs: 60_000 });
    gw.addSubroutine("echo", (x: unknown) => x);
    const controller = controllerFor(gw);
    const victim = await controller.getClient();
    const bystander = await controller.getClient();
    await bystander.getSubroutineBatch("echo", [1]);
    const bystanderBefore = gw.snapshot().handlers.find((h) => h.handlerId === bystander.handlerId)!;

    faults.arm(victim.handlerId!);
    await expect(victim.getSubroutineBatch("echo", ["lost"])).rejects.toMatchObject({
      code: ErrorCode.HANDLER_CRASHED,
      name: "HandlerCrashedError",
    });
    await expect(victim.getSubroutineBatch("echo", ["after restart"])).resolves.toBe("after restart");

    const snap = gw.snapshot();
    const restarted = snap.handlers.find((h) => h.handlerId === victim.handlerId)!;
    expect(restarted.restarts).toBe(1);
    expect(restarted.state).toBe("idle");
    const bystanderAfter = snap.handlers.find((h) => h.handlerId === bystander.handlerId)!;
    expect(bystanderAfter.actorId).toBe(bystanderBefore.actorId); // the same actor, never restarted
    expect(bystanderAfter.restarts).toBe(0);
    await expect(bystander.getSubroutineBatch("echo", [2])).resolves.toBe(2);
    expect(snap.supervisor.poolSize).toBe(2);
    expect(snap.supervisor.stats.restarts).toBe(1);
  });

  it("handler crash past budget - the session ends, the client is told and the slot is freed", async () => {
    const faults = faultInjector();
    const gw = await startGateway({ testHooks: faults.hooks, maxRestarts: 2, restartWindowMs: 60_000, maxPoolSize: 2 });
    gw.addSubroutine("echo", (x: unknown) => x);
    const controller = controllerFor(gw);
    const victim = await controller.getClient();
    const bystander = await controller.getClient();
    for (let i = 0; i < 2; i++) {
      faults.arm(victim.handlerId!);
      await expect(victim.ping(`crash ${i}`)).rejects.toMatchObject({ code: ErrorCode.HANDLER_CRASHED });
      await expect(victim.ping("ok")).resolves.toBe("ok");
    }
    faults.arm(victim.handlerId!);
    await expect(victim.ping("one too many")).rejects.toMatchObject({ code: ErrorCode.HANDLER_CRASHED });
    await until(
      () => victim.state === "closed",
      (wake) => {
        const sub = victim.actor.subscribe(wake);
        return () => sub.unsubscribe();
      },
      5_000,
      "victim closed",
    );
    await expect(victim.ping()).rejects.toMatchObject({ code: ErrorCode.SESSION_ENDED });
    const snap = gw.snapshot();
    expect(snap.supervisor.poolSize).toBe(1);
    expect(snap.supervisor.stats.crashedOut).toBe(1);
    expect(snap.handlers.map((h) => h.handlerId)).toEqual([bystander.handlerId]);
    // The freed slot is usable at once, and the bystander never noticed.
    const replacement = await controller.getClient();
    await expect(replacement.ping("new")).resolves.toBe("new");
    await expect(bystander.getSubroutineBatch("echo", ["fine"])).resolves.toBe("fine");
  });

  it("inspection - one inspect callback sees the gateway, supervisor, handlers, controller and clients", async () => {
    const gatewayActors = new Map<string, string | undefined>();
    const controllerActors = new Map<string, string | undefined>();
    const wakers = new Set<() => void>();
    const record = (into: Map<string, string | undefined>) => (event: InspectionEvent) => {
      if (event.type === "@xstate.actor" && event.actorRef instanceof Actor) into.set(event.actorRef.id, event.actorRef.options.parent?.id);
      for (const wake of wakers) wake();
    };
    const gw = await startGateway({ inspect: record(gatewayActors) });
    gw.addSubroutine("slow", () => new Promise((r) => setTimeout(() => r(1), 300)));
    const controller = controllerFor(gw, { inspect: record(controllerActors) });
    const client = await controller.getClient();
    const call = client.getSubroutineBatch("slow");
    await until(
      () => gw.snapshot().handlers[0]?.state === "busy.batchGet",
      (wake) => {
        wakers.add(wake);
        return () => wakers.delete(wake);
      },
      5_000,
      "handler busy",
    );
    const busy = gw.snapshot();
    expect(busy.handlers[0]).toMatchObject({ state: "busy.batchGet", request: { kind: "batchGet", name: "slow" } });
    expect(busy.supervisor.state).toBe("running.accepting");
    await within(call, 5_000, "slow call");
    expect(gw.snapshot().handlers[0]?.request).toBeUndefined();

    expect(gatewayActors.get("supervisor")).toBe("gateway");
    expect(gatewayActors.get("handler-1.0")).toBe("supervisor");
    expect([...controllerActors.keys()]).toContain("client-1");
    expect(controllerActors.get("client-1")).toBe("controller");
    expect(controllerActors.get("wire")).toBe("client-1");
  });
});
