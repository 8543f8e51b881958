/**
 * A machine's statechart as plain data, read from the machine's own
 * definition (`machine.root`), for the web inspector to lay out and draw.
 * Nothing here is hand-kept: a state or transition added to a machine shows
 * up in the inspector by itself.
 */
import type { AnyStateMachine } from "xstate";

/** One transition out of a state. */
export interface TransitionGraph {
  /** The event that takes it: `rpc.call`, `always` (eventless), `after 100ms` (delayed), `done: handler-1.0` ... */
  readonly event: string;
  /** Ids of the target states (`handler.idle`); empty for a transition that stays (actions only). */
  readonly targets: readonly string[];
  /** The guard's name, when it has one (an inline guard shows as `guard`). */
  readonly guard?: string;
  readonly description?: string;
}

/** One state node and, for compound and parallel states, its children. */
export interface StateGraph {
  /** Unique in its machine: `handler.busy.streaming`. */
  readonly id: string;
  readonly key: string;
  readonly type: "atomic" | "compound" | "parallel" | "final" | "history";
  /** Id of the initial child (compound states). */
  readonly initial?: string;
  readonly description?: string;
  /** Names of entry actions and invoked actors, as the inspector labels them. */
  readonly entry: readonly string[];
  readonly invoke: readonly string[];
  readonly states: readonly StateGraph[];
  readonly transitions: readonly TransitionGraph[];
}

/** A machine by kind (`gateway`, `supervisor`, `handler`, `controller`, `client`). */
export interface MachineGraph {
  readonly id: string;
  readonly root: StateGraph;
}

interface TransitionLike {
  readonly eventType: string | null;
  readonly target?: readonly (string | { readonly id: string })[] | undefined;
  readonly guard?: unknown;
  readonly description?: string | undefined;
}

interface NodeLike {
  readonly id: string;
  /** Eventless transitions: not part of `definition.transitions`. */
  readonly always?: readonly TransitionLike[] | undefined;
  readonly key: string;
  readonly type: StateGraph["type"];
  readonly description?: string | undefined;
  readonly states: Record<string, NodeLike>;
  readonly definition: {
    readonly initial?: { readonly target: readonly (string | { readonly id: string })[] } | undefined;
    readonly entry: readonly unknown[];
    readonly invoke: readonly { readonly id?: string; readonly src?: unknown }[];
    readonly transitions: readonly TransitionLike[];
  };
}

function nameOf(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "function") return value.name || "inline";
  if (value && typeof value === "object" && typeof (value as { type?: unknown }).type === "string") return (value as { type: string }).type;
  return undefined;
}

function eventLabel(eventType: string | null): string {
  if (eventType === null || eventType === "") return "always";
  const after = /^xstate\.after\.([^.]+)\./.exec(eventType);
  if (after) return /^\d+$/.test(after[1]!) ? `after ${after[1]}ms` : `after ${after[1]}`;
  if (eventType.startsWith("xstate.done.actor.")) return `done: ${eventType.slice("xstate.done.actor.".length)}`;
  if (eventType.startsWith("xstate.error.actor.")) return `error: ${eventType.slice("xstate.error.actor.".length)}`;
  return eventType;
}

function targetId(target: string | { readonly id: string }): string {
  return (typeof target === "string" ? target : target.id).replace(/^#/, "");
}

function describeNode(node: NodeLike): StateGraph {
  const def = node.definition;
  const initial = def.initial?.target[0];
  return {
    id: node.id,
    key: node.key,
    type: node.type,
    ...(initial !== undefined ? { initial: targetId(initial) } : {}),
    ...(node.description ? { description: node.description } : {}),
    entry: def.entry.map(nameOf).filter((n): n is string => n !== undefined),
    invoke: def.invoke.map((i) => nameOf(i.src) ?? i.id ?? "actor"),
    states: Object.values(node.states).map(describeNode),
    transitions: [...(node.always ?? []), ...def.transitions].map((t) => {
      const guard = t.guard === undefined ? undefined : (nameOf(t.guard) ?? "guard");
      return {
        event: eventLabel(t.eventType),
        targets: (t.target ?? []).map(targetId),
        ...(guard !== undefined ? { guard: guard === "inline" ? "guard" : guard } : {}),
        ...(t.description ? { description: t.description } : {}),
      };
    }),
  };
}

/** The statechart of `machine`, as plain data (CBOR- and JSON-safe). */
export function describeMachine(machine: AnyStateMachine): MachineGraph {
  return { id: machine.id, root: describeNode(machine.root as unknown as NodeLike) };
}

/**
 * Ids of the state nodes active in a state written as `stateName()` does
 * (`busy.streaming` -> `handler`, `handler.busy`, `handler.busy.streaming`).
 */
export function activeStateIds(machineId: string, state: string): string[] {
  const ids = [machineId];
  let id = machineId;
  for (const key of state.split(".")) {
    if (key === "") continue;
    id = `${id}.${key}`;
    ids.push(id);
  }
  return ids;
}
