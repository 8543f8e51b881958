/**
 * The "laptop": a `driver` machine that owns two swarmnet client actors as
 * its children, `sensors` (one long stream of telemetry) and `control`
 * (steering commands as batch sends), and drives on their events.
 *
 *   online.connecting --sensors connected--> online.cruising
 *   online.cruising --obstacle near--> online.braking --speed 0--> online.stopped
 *   online.braking | online.stopped --road clear--> online.cruising
 *   online --a client actor fails (car gone, session ended)--> reconnecting --after a pause--> online
 *   online --park--> online.parking --both clients closed--> parked (final)
 *
 * Re-entering `online` invokes fresh client actors: that is the whole restart.
 */
import { assign, sendTo, setup, type ErrorActorEvent } from "xstate";
import type { SwarmnetError } from "../../runtime/index.js";
import { swarmClientMachine, type SwarmClientEmitted } from "../../runtime/actors.js";
import { steeringBytes, type Telemetry } from "./car.js";

/** Brake when an obstacle is this close. */
export const BRAKE_AT_CM = 120;
/** Drive on when the road ahead is this clear. */
export const CLEAR_AT_CM = 200;

export interface DriverInput {
  endpoint: string;
  /** Sensor period on the car. @default 20 */
  tickMs?: number;
  /** Pause before reconnecting. @default 250 */
  reconnectDelayMs?: number;
}

export interface DriverContext {
  endpoint: string;
  tickMs: number;
  reconnectDelayMs: number;
  proximityCm: number;
  speedKmh: number;
  /** Readings since the current connection came up. */
  readings: number;
  steeringSent: number;
  steeringAcked: number;
  reconnects: number;
  lastError: string | undefined;
  /** Client actors closed while parking. */
  closed: number;
}

export type DriverEvent = SwarmClientEmitted | { type: "park" };

const TELEMETRY = "telemetry";

function telemetryOf(event: DriverEvent): Telemetry | undefined {
  return event.type === "swarmnet.item" && event.requestId === TELEMETRY ? (event.buffer as Telemetry) : undefined;
}

function clientInput(context: DriverContext) {
  // Short deadlines: a car that is gone should be noticed quickly.
  return { endpoint: context.endpoint, connectTimeoutMs: 1_000, timeoutMs: 2_000 };
}

export const driverMachine = setup({
  types: {
    input: {} as DriverInput,
    context: {} as DriverContext,
    events: {} as DriverEvent,
  },
  actors: { swarm: swarmClientMachine },
  actions: {
    /** A client actor failed (xstate.error.actor.sensors / .control): remember why. */
    lost: assign({
      lastError: ({ event }) => ((event as unknown as ErrorActorEvent<SwarmnetError>).error as Partial<SwarmnetError>).code ?? "unknown",
      reconnects: ({ context }) => context.reconnects + 1,
    }),
    /** A steering command, as a batch send over the control client (queued there while it connects). */
    steer: sendTo("control", ({ context }, command: { throttle: number; brake: number; angle: number }) => ({
      type: "send" as const,
      name: "steer",
      buffer: steeringBytes(command),
      args: [context.steeringSent + 1],
    })),
    countSteer: assign({ steeringSent: ({ context }) => context.steeringSent + 1 }),
    read: assign(({ context, event }) => {
      const t = telemetryOf(event);
      return t ? { proximityCm: t.proximityCm, speedKmh: t.speedKmh, readings: context.readings + 1 } : {};
    }),
  },
  delays: {
    reconnectDelay: ({ context }) => context.reconnectDelayMs,
  },
  guards: {
    obstacleNear: ({ event }) => (telemetryOf(event)?.proximityCm ?? Infinity) < BRAKE_AT_CM,
    roadClear: ({ event }) => (telemetryOf(event)?.proximityCm ?? 0) > CLEAR_AT_CM,
    standingStill: ({ event }) => telemetryOf(event)?.speedKmh === 0,
    laneCheck: ({ event }) => event.type === "swarmnet.item" && event.requestId === TELEMETRY && event.ident % 10 === 0,
  },
}).createMachine({
  id: "driver",
  context: ({ input }) => ({
    endpoint: input.endpoint,
    tickMs: input.tickMs ?? 20,
    reconnectDelayMs: input.reconnectDelayMs ?? 250,
    proximityCm: Infinity,
    speedKmh: 0,
    readings: 0,
    steeringSent: 0,
    steeringAcked: 0,
    reconnects: 0,
    lastError: undefined,
    closed: 0,
  }),
  initial: "online",
  states: {
    online: {
      entry: assign({ readings: 0 }),
      invoke: [
        { id: "sensors", src: "swarm", input: ({ context }) => clientInput(context), onError: { target: "reconnecting", actions: "lost" } },
        { id: "control", src: "swarm", input: ({ context }) => clientInput(context), onError: { target: "reconnecting", actions: "lost" } },
      ],
      on: {
        "swarmnet.item": { actions: "read" },
        "swarmnet.result": { actions: assign({ steeringAcked: ({ context }) => context.steeringAcked + 1 }) },
        park: ".parking",
      },
      initial: "connecting",
      states: {
        connecting: {
          on: {
            "swarmnet.connected": {
              guard: ({ event }) => event.clientId === "sensors",
              target: "cruising",
              actions: sendTo("sensors", ({ context }) => ({
                type: "stream" as const,
                requestId: TELEMETRY,
                name: "sensors",
                args: [context.tickMs],
                window: 64,
              })),
            },
          },
        },
        cruising: {
          entry: [{ type: "steer", params: { throttle: 60, brake: 0, angle: 0 } }, "countSteer"],
          on: {
            "swarmnet.item": [
              { guard: "obstacleNear", target: "braking", actions: "read" },
              {
                // Every tenth frame: steer towards the lane centre seen in the camera frame.
                guard: "laneCheck",
                actions: [
                  "read",
                  {
                    type: "steer",
                    params: ({ event }) => ({
                      throttle: 60,
                      brake: 0,
                      angle: Math.max(-30, Math.min(30, ((telemetryOf(event)?.frame[0] ?? 128) - 128) >> 1)),
                    }),
                  },
                  "countSteer",
                ],
              },
              { actions: "read" },
            ],
          },
        },
        braking: {
          entry: [{ type: "steer", params: { throttle: 0, brake: 100, angle: 0 } }, "countSteer"],
          on: {
            "swarmnet.item": [
              { guard: "roadClear", target: "cruising", actions: "read" },
              { guard: "standingStill", target: "stopped", actions: "read" },
              { actions: "read" },
            ],
          },
        },
        stopped: {
          on: {
            "swarmnet.item": [{ guard: "roadClear", target: "cruising", actions: "read" }, { actions: "read" }],
          },
        },
        parking: {
          entry: [
            { type: "steer", params: { throttle: 0, brake: 100, angle: 0 } },
            "countSteer",
            sendTo("sensors", { type: "close" }),
            sendTo("control", { type: "close" }),
          ],
          on: {
            park: {},
            "swarmnet.closed": [
              { guard: ({ context }) => context.closed + 1 === 2, target: "#driver.parked" },
              { actions: assign({ closed: ({ context }) => context.closed + 1 }) },
            ],
          },
        },
      },
    },
    reconnecting: {
      after: { reconnectDelay: "online" },
    },
    parked: { type: "final" },
  },
});
