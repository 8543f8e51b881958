/**
 * What the web inspector shows, independent of where it comes from: each
 * actor (gateway, supervisor, handlers; controller, clients) with its state,
 * request in flight and progress, the machines' statecharts, and the recorded
 * transitions. A gateway's feed is read in-process or over `admin.watch`; a
 * controller's only in-process.
 */
import type { AnyActorLogic, AnyStateMachine } from "xstate";
import type { ClientSnapshot } from "../actors/client.js";
import { clientMachine } from "../actors/client.js";
import { controllerMachine } from "../actors/controller.js";
import { gatewayMachine } from "../actors/gateway.js";
import { handlerMachine } from "../actors/handler.js";
import { supervisorMachine } from "../actors/supervisor.js";
import type { GatewayInspection } from "./gateway.js";
import { describeMachine, type MachineGraph } from "./statechart.js";
import type { TransitionRecord } from "./transition-log.js";
import { stateName } from "./wait.js";

/** Machine kinds of a gateway's actor system, as the transition log and the page name them. */
export const GATEWAY_KINDS: ReadonlyMap<AnyActorLogic, string> = new Map<AnyActorLogic, string>([
  [gatewayMachine, "gateway"],
  [supervisorMachine, "supervisor"],
  [handlerMachine, "handler"],
]);

/** Machine kinds of a controller's actor system. */
export const CONTROLLER_KINDS: ReadonlyMap<AnyActorLogic, string> = new Map<AnyActorLogic, string>([
  [controllerMachine, "controller"],
  [clientMachine, "client"],
]);

const graphs = new Map<ReadonlyMap<AnyActorLogic, string>, Record<string, MachineGraph>>();

/** The statecharts of the machines in `kinds`, by kind (computed once). */
export function machineGraphs(kinds: ReadonlyMap<AnyActorLogic, string>): Record<string, MachineGraph> {
  let result = graphs.get(kinds);
  if (result === undefined) {
    result = {};
    for (const [logic, kind] of kinds) result[kind] = describeMachine(logic as AnyStateMachine);
    graphs.set(kinds, result);
  }
  return result;
}

/** What `gateway.watch()` and `admin.watch` return. */
export interface GatewayWatch {
  readonly snapshot: GatewayInspection;
  /** Transitions after the cursor asked for, oldest first. */
  readonly transitions: readonly TransitionRecord[];
  /** The cursor to ask with next time. */
  readonly next: number;
  /** The statecharts, by kind, when asked for. */
  readonly machines?: Record<string, MachineGraph>;
}

/** One actor as the inspector page shows it. */
export interface InspectorActor {
  readonly id: string;
  /** The parent actor's id; null for a root (gateway, controller). */
  readonly parent: string | null;
  /** Its machine: a key of the page's `machines`. */
  readonly kind: string;
  readonly label: string;
  /** `busy.batchGet` */
  readonly state: string;
  /** The request in flight; `startedAt` in ms since the epoch when known. */
  readonly request: { readonly id: number; readonly kind: string; readonly name?: string; readonly startedAt?: number } | null;
  /** The running stream or transfer (`itemsSent`, `bytesSent`; `filesDone`, `bytesDone`, ...). */
  readonly progress: Record<string, unknown> | null;
  /** Items and bytes per second since the previous frame, for a stream or transfer. */
  readonly rate: { readonly items?: number; readonly bytes?: number } | null;
  /** Small facts shown beside the state: pool usage, restarts, requests served. */
  readonly info: Readonly<Record<string, string | number>>;
}

/** The actors of one gateway snapshot: gateway -> supervisor -> handlers. */
export function gatewayActors(s: GatewayInspection): InspectorActor[] {
  const sup = s.supervisor;
  const actors: InspectorActor[] = [
    {
      id: "gateway",
      parent: null,
      kind: "gateway",
      label: `gateway ${s.endpoint ?? ""}`.trim(),
      state: s.state,
      request: null,
      progress: null,
      rate: null,
      info: {
        handshakes: s.security.handshakes,
        unauthorized: s.security.authFailures,
        "failed handshakes": s.security.protocolFailures,
        // Worker-thread pools (addSubroutines): absent from gateways that predate them.
        ...((s.threads ?? []).length > 0
          ? {
              threads: (s.threads ?? []).reduce((n, p) => n + p.threads, 0),
              "thread tasks": (s.threads ?? []).map((p) => `${p.running} running, ${p.queued} queued`).join("; "),
            }
          : {}),
      },
    },
    {
      id: "supervisor",
      parent: "gateway",
      kind: "supervisor",
      label: "supervisor",
      state: sup.state,
      request: null,
      progress: null,
      rate: null,
      info: {
        pool: `${sup.poolSize}/${sup.maxPoolSize}`,
        waiting: sup.waiting,
        accepted: sup.stats.accepted,
        refused: sup.stats.refused,
        restarts: sup.stats.restarts,
        expired: sup.stats.expired,
      },
    },
  ];
  for (const h of s.handlers) {
    actors.push({
      id: h.actorId,
      parent: "supervisor",
      kind: "handler",
      label: `handler ${h.handlerId}`,
      state: h.state,
      request: h.request ? { ...h.request } : null,
      progress: h.progress ? { ...h.progress } : null,
      rate: null,
      info: { restarts: h.restarts, served: h.served },
    });
  }
  return actors;
}

/** The actors of a controller: controller -> its clients. */
export function controllerActors(controller: { readonly actor: { getSnapshot(): unknown } }): InspectorActor[] {
  const snapshot = controller.actor.getSnapshot() as {
    value: unknown;
    status: string;
    context: { endpoints: readonly string[]; spawned: number };
    children: Record<string, { getSnapshot(): unknown } | undefined>;
  };
  const actors: InspectorActor[] = [
    {
      id: "controller",
      parent: null,
      kind: "controller",
      label: "controller",
      state: snapshot.status === "active" ? stateName(snapshot.value) : snapshot.status,
      request: null,
      progress: null,
      rate: null,
      info: { gateways: snapshot.context.endpoints.join(" "), spawned: snapshot.context.spawned },
    },
  ];
  for (const [id, child] of Object.entries(snapshot.children)) {
    const c = child?.getSnapshot() as ClientSnapshot | undefined;
    if (!id.startsWith("client-") || c === undefined || c.status !== "active") continue;
    const pending = c.context.slot.call;
    actors.push({
      id,
      parent: "controller",
      kind: "client",
      label: `${id} -> handler ${c.context.handlerId ?? "?"}`,
      state: stateName(c.value),
      request: pending ? { id: pending.id, kind: pending.kind } : null,
      progress: null,
      rate: null,
      info: { gateway: c.context.endpoint, completed: c.context.slot.completed },
    });
  }
  return actors;
}
