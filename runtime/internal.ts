/**
 * `swarmnet/internal`: the parts under the public API, for swarmnet's own
 * tests, CLI and tools, and for whoever needs to reach below the user's entry
 * (`swarmnet`). Like nats.js's `./internal`, it carries NO stability promise:
 * any name here may change or go in any release, minor ones included.
 *
 * - transports: the interface the actors talk to (`TransportFactory`,
 *   `ServerTransport`, `ClientTransport`, `Frames`, `Peer`) and `MemoryHub`,
 *   an in-process transport for tests without sockets;
 * - the wire: message types, `PROTOCOL_VERSION`, the CBOR `encode`/`decode`
 *   the gateway and clients use (user classes are registered with
 *   `registerClass` from the main entry);
 * - test hooks: `InternalGatewayOptions` (GatewayOptions plus `testHooks`)
 *   and `crashHandlerForTest`;
 * - helpers the CLI shares: `normalizeEndpoint`, `describeThrown`, and the
 *   gateway's own rules for a requested path (`checkRelativePath`,
 *   `normalizeRequestPath`), so the CLI refuses what the gateway would.
 */
export { MemoryHub } from "../transports/memory.js";
export { crashHandlerForTest } from "./gateway.js";
export { normalizeEndpoint } from "./endpoint.js";
export { describeThrown } from "../protocol/thrown.js";
export { checkRelativePath, kindOfEntry, normalizeRequestPath } from "../protocol/paths.js";
export { encode, decode } from "../protocol/codec.js";
export { PROTOCOL_VERSION } from "../protocol/messages.js";

export type { InternalGatewayOptions } from "./gateway-options.js";
export type { HandlerHooks } from "../actors/handler.js";
export type { ThrownDescription } from "../protocol/thrown.js";
export type { CallMode, Message, MessageType, MessageOf, ClientMessage, GatewayMessage } from "../protocol/messages.js";
export type { TransportFactory, ServerTransport, ClientTransport, Frames, Peer } from "../transports/transport.js";
