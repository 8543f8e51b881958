/** Raw zeromq.js ROUTER/DEALER pieces shared by the zeromq peer modules. */
import * as zmq from "zeromq";
import type { RunningServer } from "../workload.js";

/** The port of a `tcp://host:port` endpoint, as `lastEndpoint` reports it. */
export function portOf(endpoint: string | null): number {
  const port = Number(/:(\d+)$/.exec(endpoint ?? "")?.[1]);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`no port in endpoint ${String(endpoint)}`);
  return port;
}

export interface RouterServerOptions {
  readonly host: string;
  /** Pending connections the listener queues (ZMQ_BACKLOG, default 100). */
  readonly backlog?: number;
  /** The reply frames for one request's frames (routing id not included). */
  readonly reply: (request: Buffer[]) => Buffer[];
}

/**
 * A ROUTER that answers every request in its receive loop: the least a
 * ZeroMQ request/reply server can do.
 */
export async function startRouterServer(options: RouterServerOptions): Promise<RunningServer> {
  const router = new zmq.Router({ linger: 0, ...(options.backlog ? { backlog: options.backlog } : {}) });
  await router.bind(`tcp://${options.host}:0`);
  const loop = (async () => {
    for await (const [routingId, ...request] of router) {
      if (routingId) await router.send([routingId, ...options.reply(request)]);
    }
  })().catch((error: unknown) => {
    // Closing the socket ends the loop with an error; anything else is a bug.
    if (!router.closed) throw error;
  });
  return {
    port: portOf(router.lastEndpoint),
    async stop() {
      router.close();
      await loop;
    },
  };
}

/** A DEALER connected to the server, with linger 0 so closing never waits. */
export function connectDealer(host: string, port: number): zmq.Dealer {
  const dealer = new zmq.Dealer({ linger: 0 });
  dealer.connect(`tcp://${host}:${port}`);
  return dealer;
}

/** One request/reply round trip on a DEALER that has nothing else in flight. */
export async function roundTrip(dealer: zmq.Dealer, request: Buffer): Promise<Buffer> {
  await dealer.send(request);
  const [reply] = await dealer.receive();
  if (!reply) throw new Error("empty reply");
  return reply;
}
