import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onTestFinished } from "vitest";
import { Controller, Gateway, type ControllerOptions } from "../runtime/index.js";
import type { InternalGatewayOptions } from "../runtime/internal.js";

/** Rejects with a named error if `promise` has not settled within `ms`: every wait in a test is bounded. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** A started gateway on an ephemeral loopback port, stopped when the test ends (`testHooks` allowed). */
export async function startGateway(options: InternalGatewayOptions = {}): Promise<Gateway> {
  const gateway = new Gateway({ port: 0, host: "127.0.0.1", stopGraceMs: 200, ...options });
  onTestFinished(() => within(gateway.stop(), 10_000, "gateway stop"));
  await gateway.start();
  return gateway;
}

/** A controller for `gateway`, closed when the test ends. */
export function controllerFor(gateway: Gateway | Gateway[], options: ControllerOptions = {}): Controller {
  const gateways = (Array.isArray(gateway) ? gateway : [gateway]).map((g) => g.endpoint);
  const controller = new Controller({ gateways, timeoutMs: 5_000, connectTimeoutMs: 3_000, ...options });
  onTestFinished(() => within(controller.close(), 10_000, "controller close"));
  return controller;
}

/** A fresh temp dir, removed when the test ends. */
export async function tempDir(prefix = "swarmnet-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Resolves when `predicate` holds, checking after each event from `subscribe`; bounded by `ms`. */
export function until(predicate: () => boolean, subscribe: (wake: () => void) => () => void, ms: number, what: string): Promise<void> {
  return within(
    new Promise<void>((resolve) => {
      if (predicate()) return resolve();
      const stop = subscribe(() => {
        if (predicate()) {
          stop();
          resolve();
        }
      });
    }),
    ms,
    what,
  );
}
