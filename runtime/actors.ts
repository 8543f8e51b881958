/**
 * `swarmnet/actors`: the machines themselves, for composing swarmnet into
 * your own xstate systems and for inspecting them.
 *
 * `swarmClientMachine` is the one to invoke or spawn from your own machine:
 * give it an endpoint (or a Controller), send it `call` / `send` / `ping` /
 * `stream` / `abort` / `close`, and get `swarmnet.*` events back. The others
 * are the building blocks the Gateway and Controller classes drive; they take
 * a transport in their input.
 */
export { swarmClientMachine, DEFAULT_CLIENT_CLOSE_TIMEOUT_MS } from "./client-actor.js";
export {
  gatewayMachine,
  supervisorMachine,
  handlerMachine,
  controllerMachine,
  clientMachine,
  SubroutineRegistry,
  DeliveryLink,
} from "../actors/index.js";

export type {
  SwarmClientInput,
  SwarmClientOptions,
  SwarmClientCommand,
  SwarmClientEvent,
  SwarmClientEmitted,
  SwarmClientEmittedType,
  SwarmClientOutput,
  SwarmClientContext,
  SwarmClientActorRef,
  SwarmClientSnapshot,
  RequestId,
} from "./client-actor.js";
export type {
  GatewayMachineInput,
  GatewayContext,
  GatewayEvent,
  GatewayActorRef,
  GatewaySnapshot,
  SupervisorInput,
  SupervisorContext,
  SupervisorEvent,
  SupervisorActorRef,
  SupervisorSnapshot,
  HandlerInput,
  HandlerContext,
  HandlerEvent,
  HandlerOutput,
  HandlerActorRef,
  HandlerSnapshot,
  HandlerHooks,
  CurrentRequest,
  RequestKind,
  ControllerMachineInput,
  ControllerContext,
  ControllerEvent,
  ControllerActorRef,
  ClientMachineInput,
  ClientContext,
  ClientEvent,
  ClientActorRef,
  ClientSnapshot,
  PendingCall,
  CallKind,
  LinkStats,
  DeliveryStats,
} from "../actors/index.js";
