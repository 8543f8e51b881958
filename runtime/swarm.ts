import type { Client } from "./client.js";

/**
 * Many client-handler pairs (each its own TCP connection) working one job.
 * File transfer over the swarm comes with the files feature.
 */
export class Swarm {
  readonly clients: readonly Client[];

  /** @internal Made by `Controller.getSwarm(n)`. */
  constructor(clients: readonly Client[]) {
    this.clients = clients;
  }

  get size(): number {
    return this.clients.length;
  }

  /** Closes every client's handler. */
  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.closeHandler()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
