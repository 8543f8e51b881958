/**
 * What a client's link does, published on Node's `diagnostics_channel` (the
 * way undici and Node's own http publish their internals): subscribe to
 * `swarmnet:link` to watch links while debugging, or to wait for one in a
 * test. Nothing is built when nobody subscribes.
 *
 *   parked   an idle client gave up its socket monitor (see ZmqClientTransport)
 *   quiet    the gateway answered no heartbeat for two heartbeat periods: probing
 *   probed   a probe ended (`up`: the gateway completed a handshake)
 *   down     the link is taken as down (monitor, or a failed probe): the lease clock runs
 *   up       the link is back: the session resumes
 */
import { channel } from "node:diagnostics_channel";

export type LinkEventKind = "parked" | "quiet" | "probed" | "down" | "up";

export interface LinkEvent {
  readonly event: LinkEventKind;
  /** The client connection's routing id (absent on transports without one). */
  readonly routingId: string | undefined;
  /** For `probed`: whether the gateway was reached. */
  readonly up?: boolean;
}

/** The `swarmnet:link` channel. */
export const linkChannel = channel("swarmnet:link");

/** Publishes a link event if anyone listens. */
export function publishLink(event: LinkEventKind, routingId: string | undefined, up?: boolean): void {
  if (linkChannel.hasSubscribers) linkChannel.publish({ event, routingId, ...(up === undefined ? {} : { up }) } satisfies LinkEvent);
}
