/**
 * Watching the machines: every actor of a gateway (the gateway, its supervisor,
 * one handler per client) and of a controller (one client actor per
 * connection) reports to one plain `inspect` callback. This one prints every
 * state transition as it happens:
 *
 *   [gateway] handler-1.0: idle -> busy.batchGet  (call.async)
 *
 * A call whose subroutine answers synchronously (and a ping) takes no
 * transition at all: it is served on the data plane while the handler is idle.
 *
 * Any xstate inspector works the same way, e.g. the Stately inspector:
 * `new Gateway({ inspect: createBrowserInspector().inspect })` (package
 * @statelyai/inspect; `createSkyInspector` for Node).
 *
 *   npm run example:inspect-transitions
 */
import type { InspectionEvent } from "xstate";
import { Controller, Gateway, type InspectCallback } from "../../runtime/index.js";

const log = (line: string): void => void process.stdout.write(`${line}\n`);

/** `a.b` for a nested state value. */
function stateName(value: unknown): string {
  if (typeof value === "string") return value;
  if (value !== null && typeof value === "object") {
    return Object.entries(value)
      .map(([k, v]) => {
        const inner = stateName(v);
        return inner ? `${k}.${inner}` : k;
      })
      .join(",");
  }
  return "";
}

/** A plain callback that logs each actor's state changes, with the event that caused them. */
function transitionLogger(side: string): InspectCallback {
  const last = new Map<string, string>();
  return (event: InspectionEvent) => {
    // Also "@xstate.actor" (an actor started) and "@xstate.event" (every event sent, with source and target).
    if (event.type !== "@xstate.snapshot") return;
    const snapshot = event.snapshot as { value?: unknown; status?: string };
    if (snapshot.value === undefined) return; // callback and promise actors have no states
    const ref = event.actorRef as { id?: string; sessionId: string };
    const id = ref.id ?? ref.sessionId;
    const state = stateName(snapshot.value) + (snapshot.status === "active" ? "" : ` (${snapshot.status})`);
    const before = last.get(id);
    if (before === state) return;
    last.set(id, state);
    log(`[${side}] ${id}: ${before ?? "(new)"} -> ${state}  (${event.event.type})`);
  };
}

const gateway = new Gateway({ port: 0, maxPoolSize: 2, inspect: transitionLogger("gateway") });
gateway.addSubroutine("double", async (x: number) => {
  await new Promise((resolve) => setTimeout(resolve, 10)); // async, so the handler sits in busy.batchGet for a while
  return 2 * x;
});
gateway.addSubroutine("count", function* (n: number) {
  for (let i = 0; i < n; i++) yield [i, i];
});
await gateway.start();
log(`gateway listening on ${gateway.endpoint}`);

const controller = new Controller({ port: gateway.port, inspect: transitionLogger("controller") });
try {
  const client = await controller.getClient();
  log(`double(21) = ${await client.getSubroutineBatch<number>("double", [21])}`);
  let items = 0;
  for await (const _ of client.stream("count", [3])) items++;
  log(`count(3) streamed ${items} items`);
  await client.closeHandler();
} finally {
  await controller.close();
  await gateway.stop();
}
log("inspect-transitions done");
