/**
 * W8 on swarmnet: the same subroutines on the gateway's event loop (`loop.*`)
 * and on a pool of worker threads (`addSubroutines`), through the public API.
 */
import { Controller, Gateway, type Client } from "../../../runtime/index.js";
import { LatencyRecorder, opsPerSecondSince } from "../../lib/stats.js";
import type { ClientPart, Figures, ServerPart } from "../../workload.js";
import { burn, get, small } from "./subs.js";
import type { CpuMetric, CpuParams } from "./workload.js";

export const server: ServerPart<CpuParams> = async (params, { host }) => {
  const gateway = new Gateway({ host, port: 0, maxPoolSize: 16 });
  gateway.addSubroutine("loop.burn", burn).addSubroutine("loop.get", get).addSubroutine("loop.small", small);
  await gateway.addSubroutines(new URL("./subs.js", import.meta.url), { threads: params.threads });
  await gateway.start();
  return { port: gateway.port, stop: () => gateway.stop() };
};

/** Heavy calls from `callers` clients while `pinger` pings every `pingEveryMs`: calls/s and ping latency. */
async function heavy(params: CpuParams, name: string, callers: Client[], pinger: Client) {
  const total = params.callers * params.callsEach;
  const pings = new LatencyRecorder(100_000);
  let running = true;
  const pinging = (async () => {
    let n = 0;
    while (running && n < 100_000) {
      const start = process.hrtime.bigint();
      await pinger.ping(n++);
      pings.record(start);
      await new Promise((r) => setTimeout(r, params.pingEveryMs));
    }
  })();
  const start = process.hrtime.bigint();
  await Promise.all(
    callers.map(async (client) => {
      for (let i = 0; i < params.callsEach; i++) await client.getSubroutineBatch(name, [params.burnMs]);
    }),
  );
  const callsPerSec = opsPerSecondSince(total, start);
  running = false;
  await pinging;
  const { p50Us, p99Us } = pings.summary(process.hrtime.bigint() - start);
  return { callsPerSec, p50Us, p99Us };
}

async function batch(params: CpuParams, name: string, clients: Client[]): Promise<number> {
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    clients.map(async (client) => {
      while (next < params.batchCalls) {
        const reply = (await client.getSubroutineBatch(name, [next++])) as Uint8Array;
        if (reply.length !== 1024) throw new Error(`reply of ${reply.length} bytes`);
      }
    }),
  );
  return opsPerSecondSince(params.batchCalls, start);
}

async function stream(params: CpuParams, name: string, client: Client): Promise<number> {
  let count = 0;
  const start = process.hrtime.bigint();
  await client.getSubroutineStream(
    name,
    () => void count++,
    () => undefined,
    [params.streamItems],
  );
  if (count !== params.streamItems) throw new Error(`${count} items of ${params.streamItems}`);
  return opsPerSecondSince(count, start);
}

export const client: ClientPart<CpuParams, CpuMetric> = async (params, { host, port }) => {
  const controller = new Controller({ host, port, timeoutMs: 120_000 });
  try {
    const clients = await Promise.all(Array.from({ length: 8 }, () => controller.getClient()));
    const callers = clients.slice(0, params.callers);
    const pinger = clients[params.callers]!;
    const loop = await heavy(params, "loop.burn", callers, pinger);
    const threads = await heavy(params, "burn", callers, pinger);
    const figures: Figures<CpuMetric> = {
      loopCallsPerSec: loop.callsPerSec,
      threadCallsPerSec: threads.callsPerSec,
      loopPingP50Us: loop.p50Us,
      threadPingP50Us: threads.p50Us,
      loopPingP99Us: loop.p99Us,
      threadPingP99Us: threads.p99Us,
      loopBatchOps: await batch(params, "loop.get", clients),
      threadBatchOps: await batch(params, "get", clients),
      loopStreamItems: await stream(params, "loop.small", clients[0]!),
      threadStreamItems: await stream(params, "small", clients[0]!),
    };
    return figures;
  } finally {
    await controller.close();
  }
};
