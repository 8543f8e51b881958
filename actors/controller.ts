/**
 * The controller machine parents every client actor it creates, so one
 * `inspect` callback sees the whole client side as one tree. Picking a
 * gateway and failing over live in the Controller class, which drives this.
 *
 *   open --close--> closed (final: children stop, their transports close)
 */
import { assertEvent, assign, setup, stopChild, type ActorRefFrom, type DoneActorEvent, type ErrorActorEvent } from "xstate";
import { clientMachine, type ClientMachineInput } from "./client.js";

export interface ControllerMachineInput {
  endpoints: readonly string[];
}

export interface ControllerContext {
  readonly endpoints: readonly string[];
  /** Clients created over the controller's life. */
  readonly spawned: number;
  /** Why recently failed clients failed, by actor id (the last few), for the code that asked for them. */
  readonly failures: Readonly<Record<string, unknown>>;
}

export type ControllerEvent =
  { type: "client.spawn"; id: string; input: ClientMachineInput } | { type: "client.release"; id: string } | { type: "close" };

export const controllerMachine = setup({
  types: {
    input: {} as ControllerMachineInput,
    context: {} as ControllerContext,
    events: {} as ControllerEvent,
  },
  actors: { client: clientMachine },
  actions: {
    // Spawning stays inside an assign: the one place xstate v5 hands out `spawn`.
    spawnClient: assign(({ context, event, spawn }) => {
      assertEvent(event, "client.spawn");
      spawn("client", { id: event.id, input: event.input });
      // Ids are reused (see Controller): an old client's failure under this id is not this one's.
      const { [event.id]: _old, ...failures } = context.failures;
      return { spawned: context.spawned + 1, failures };
    }),
    /** Keeps why a client failed (the last few), for the Controller that waits on it. */
    recordFailure: assign({
      failures: ({ context, event }) => {
        const { actorId, error } = event as unknown as ErrorActorEvent;
        const kept = Object.entries(context.failures).slice(-15);
        return Object.fromEntries([...kept, [actorId, error]]);
      },
    }),
  },
}).createMachine({
  id: "controller",
  context: ({ input }) => ({ endpoints: input.endpoints, spawned: 0, failures: {} }),
  initial: "open",
  states: {
    open: {
      description: "Creating and releasing clients; each is a child, so one inspect callback sees them all.",
      on: {
        "client.spawn": { actions: "spawnClient" },
        "client.release": { actions: stopChild(({ event }) => event.id) },
        // A client that ended (closed, failed, crashed) leaves the tree. Its id is reused once the
        // Controller released it (its done or error event was handled by then: children report
        // synchronously), so the event types this machine sees stay a bounded set.
        "xstate.done.actor.*": { actions: stopChild(({ event }) => (event as DoneActorEvent).actorId) },
        "xstate.error.actor.*": { actions: [stopChild(({ event }) => (event as ErrorActorEvent).actorId), "recordFailure"] },
        close: "closed",
      },
    },
    closed: { description: "Closed: the children stop and their transports close.", type: "final" },
  },
});

export type ControllerActorRef = ActorRefFrom<typeof controllerMachine>;
