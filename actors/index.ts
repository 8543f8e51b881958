/**
 * The machines themselves, for composing swarmnet into your own xstate
 * systems and for inspecting them. The `swarmnet/actors` entry
 * (runtime/actors.ts) re-exports these next to `swarmClientMachine`.
 */
export { gatewayMachine } from "./gateway.js";
export { supervisorMachine } from "./supervisor.js";
export { handlerMachine } from "./handler.js";
export { controllerMachine } from "./controller.js";
export { clientMachine } from "./client.js";
export { SubroutineRegistry } from "./subroutines.js";
export { DeliveryLink, type LinkStats } from "./delivery-link.js";
export type { DeliveryStats } from "./delivery.js";
export type { GatewayMachineInput, GatewayContext, GatewayEvent, GatewayActorRef, GatewaySnapshot } from "./gateway.js";
export type { SupervisorInput, SupervisorContext, SupervisorEvent, SupervisorActorRef, SupervisorSnapshot } from "./supervisor.js";
export type {
  HandlerInput,
  HandlerContext,
  HandlerEvent,
  HandlerOutput,
  HandlerActorRef,
  HandlerSnapshot,
  HandlerHooks,
  CurrentRequest,
} from "./handler.js";
export type { RequestKind } from "./request.js";
export type { ControllerMachineInput, ControllerContext, ControllerEvent, ControllerActorRef } from "./controller.js";
export type { ClientMachineInput, ClientContext, ClientEvent, ClientActorRef, ClientSnapshot, PendingCall, CallKind } from "./client.js";
