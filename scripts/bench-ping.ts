/**
 * Client CPU per ping: a gateway in a child process, one client here, N
 * sequential pings; prints client CPU (user+system) µs per op and wall µs per
 * op, median of the rounds. Not a test: run by hand before and after a change
 * to the client side and compare.
 *
 *   npx tsx scripts/bench-ping.ts [pings=20000] [rounds=5]
 */
import { fork } from "node:child_process";
import { Controller, Gateway } from "../runtime/index.js";

if (process.argv[2] === "--gateway") {
  const gateway = new Gateway({ host: "127.0.0.1", port: 0 });
  await gateway.start();
  process.send!({ port: gateway.port });
  process.on("message", () => void gateway.stop().then(() => process.exit(0)));
} else {
  const pings = Number(process.argv[2] ?? 20_000);
  const rounds = Number(process.argv[3] ?? 5);
  const child = fork(new URL(import.meta.url).pathname, ["--gateway"], { execArgv: process.execArgv });
  const port = await new Promise<number>((resolve) => child.once("message", (m) => resolve((m as { port: number }).port)));
  const controller = new Controller({ host: "127.0.0.1", port });
  const client = await controller.getClient();
  for (let i = 0; i < 2_000; i++) await client.ping("warm");
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < pings; i++) await client.ping("hello");
    const dt = performance.now() - t0;
    const dc = process.cpuUsage(c0);
    cpu.push((dc.user + dc.system) / pings);
    wall.push((dt * 1000) / pings);
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(
    `${pings} pings x ${rounds} rounds: client CPU ${median(cpu).toFixed(1)} us/op (rounds ${cpu.map((x) => x.toFixed(0)).join(" ")}), wall ${median(wall).toFixed(1)} us/op`,
  );
  await controller.close();
  child.send("stop");
}
