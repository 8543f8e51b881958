/**
 * What the link tests share: a fault relay in front of a gateway, a controller
 * through it, the `swarmnet:link` events, and a client that has parked.
 */
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { expect, onTestFinished } from "vitest";
import { Controller, type Client, type ControllerOptions, type Gateway, type GatewayOptions } from "../runtime/index.js";
import type { LinkEvent } from "../transports/diagnostics.js";
import { FaultRelay } from "./fault-relay.js";
import { startGateway, until, within } from "./helpers.js";

/** A relay on an ephemeral loopback port in front of `port`, closed when the test ends. */
export async function relayTo(port: number): Promise<FaultRelay> {
  const relay = new FaultRelay({ targetPort: port });
  await relay.start();
  onTestFinished(() => relay.close());
  return relay;
}

/** A controller for `endpoints` (20 s call deadline unless `options` says otherwise), closed when the test ends. */
export function controllerVia(endpoints: string[], options: ControllerOptions = {}): Controller {
  const controller = new Controller({ gateways: endpoints, timeoutMs: 20_000, connectTimeoutMs: 5_000, ...options });
  onTestFinished(() => within(controller.close(), 10_000, "controller close"));
  return controller;
}

export interface LinkEvents {
  readonly events: LinkEvent[];
  /** Calls `f` with every event from now on, synchronously as it is published. */
  on(f: (e: LinkEvent) => void): void;
  /** Resolves at the first event from now on that `match`es, bounded by `ms` (30 s). */
  next(match: (e: LinkEvent) => boolean, what: string, ms?: number): Promise<void>;
}

/** Every `swarmnet:link` event from now until the test ends. */
export function linkEvents(): LinkEvents {
  const events: LinkEvent[] = [];
  const wakers = new Set<() => void>();
  const hooks: Array<(e: LinkEvent) => void> = [];
  const listener = (message: unknown): void => {
    events.push(message as LinkEvent);
    for (const h of hooks) h(message as LinkEvent);
    for (const wake of wakers) wake();
  };
  subscribe("swarmnet:link", listener);
  onTestFinished(() => void unsubscribe("swarmnet:link", listener));
  return {
    events,
    on: (f) => void hooks.push(f),
    next(match, what, ms = 30_000) {
      const from = events.length;
      return until(
        () => events.slice(from).some(match),
        (wake) => (wakers.add(wake), () => void wakers.delete(wake)),
        ms,
        what,
      );
    },
  };
}

/** A new client that pinged and then parked (its socket no longer monitored). */
export async function parkedClient(controller: Controller, link: LinkEvents): Promise<Client> {
  const client = await controller.getClient();
  const parked = link.next((e) => e.event === "parked", "the client to park");
  await expect(client.ping("hi")).resolves.toBe("hi");
  await parked;
  return client;
}

/** A gateway with `options`, a relay in front of it, a controller through the relay and the link events. */
export async function relayedGateway(
  options: GatewayOptions,
  controllerOptions: ControllerOptions = {},
): Promise<{ gw: Gateway; relay: FaultRelay; controller: Controller; link: LinkEvents }> {
  const gw = await startGateway(options);
  const relay = await relayTo(gw.port);
  return { gw, relay, controller: controllerVia([relay.endpoint], controllerOptions), link: linkEvents() };
}
