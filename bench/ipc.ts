/**
 * Messages between the runner and its worker processes, over Node's IPC
 * channel (`fork`). A worker's stdout stays free for whatever the system under
 * test prints.
 */
import type { Figures, ServerMemory } from "./workload.js";

/** Runner -> worker. */
export type ToWorker =
  /**
   * Client only: a warm-up pass if `warmup`, then `runs` measured runs
   * against `port`.
   */
  | { type: "start"; port: number; runs: number; warmup: boolean }
  /** Server only: report memory now. */
  | { type: "probe"; id: number }
  /** Client only: the server's answer to a probe this client asked for. */
  | { type: "probe.result"; id: number; memory: ServerMemory }
  /** Server only: stop listening and exit. */
  | { type: "stop" };

/** Worker -> runner. */
export type FromWorker =
  /** Loaded and, for a server, listening on `port`. */
  | { type: "ready"; port?: number }
  | { type: "run"; index: number; figures: Figures }
  /** Client: all runs reported. */
  | { type: "done" }
  /** Client: asks for the server's memory. Server: answers with it. */
  | { type: "probe"; id: number }
  | { type: "probe.result"; id: number; memory: ServerMemory }
  | { type: "error"; message: string };

export type Role = "server" | "client";

export function isFromWorker(value: unknown): value is FromWorker {
  return typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string";
}

export function isToWorker(value: unknown): value is ToWorker {
  return typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string";
}
