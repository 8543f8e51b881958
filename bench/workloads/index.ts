/**
 * Every workload the runner knows, in table order. A new workload is a folder
 * next to these (a `workload.ts` plus one module per system) and a line here.
 */
import type { AnyWorkload } from "../workload.js";
import { w1 } from "./w1-ping/workload.js";
import { w2 } from "./w2-batch/workload.js";
import { w3a, w3b } from "./w3-stream/workload.js";
import { w4 } from "./w4-files/workload.js";
import { w5 } from "./w5-large-file/workload.js";
import { w6, w6b } from "./w6-scale/workload.js";
import { w7 } from "./w7-long-link/workload.js";
import { w8 } from "./w8-cpu/workload.js";
import { w1py, w3apy } from "./python-client/workload.js";

export const WORKLOADS: readonly AnyWorkload[] = [w1, w1py, w2, w3a, w3apy, w3b, w4, w5, w6, w6b, w7, w8];

/** The workload with this id, case-insensitive (`w1` finds W1). */
export function findWorkload(id: string): AnyWorkload | undefined {
  return WORKLOADS.find((w) => w.id.toLowerCase() === id.toLowerCase());
}
