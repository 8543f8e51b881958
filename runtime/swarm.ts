import type { Client } from "./client.js";
import { swarmGetFiles, swarmSendFiles, type GetFilesOptions, type SendFilesOptions } from "./files.js";

/**
 * Many client-handler pairs (each its own TCP connection) working one job.
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

  /**
   * Downloads like `client.getFilesFromGateway`, spread over every client with
   * p-queue, largest first; small files travel in batches (one request each),
   * and a file larger than `splitBytes` (default 32 MiB) is split into byte
   * ranges fetched by several clients at once and written into one `NAME.part`
   * by position. Only the clients of the gateway that listed the files fetch
   * them (a swarm may span gateways). If the swarm fails, the `.part` journal
   * keeps the ranges written, so the next download fetches only the rest.
   *
   * ```ts
   * const paths = await swarm.getFilesFromGateway({ folder: "logs", regex: "\\.log$" });
   * ```
   */
  getFilesFromGateway(options: GetFilesOptions): Promise<string[]> {
    return swarmGetFiles(
      this.clients.map((c) => c.transferChannel),
      options,
    );
  }

  /** Uploads like `client.sendFilesToGateway`, files spread over every client, largest first, a file above `splitBytes` in byte ranges. Resolves with the count. */
  sendFilesToGateway(options: SendFilesOptions): Promise<number> {
    return swarmSendFiles(
      this.clients.map((c) => c.transferChannel),
      options,
    );
  }

  /** Closes every client's handler. */
  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.closeHandler()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
