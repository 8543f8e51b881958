/**
 * `npm start`: a gateway on 127.0.0.1 with example subroutines and a generated
 * folder of files, then a controller that pings, calls, sends, streams sensor
 * data and downloads the folder over a swarm of 4 (progress bars on a
 * terminal), and a short summary with throughput. Everything shuts down by
 * itself; the generated folder is removed, the downloads stay in the output
 * folder (`--out DIR`, default ./swarmnet-demo-output).
 */
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Controller, DataType, Gateway, fromBytes, strToBytes, toBytes, type Kwargs } from "../runtime/index.js";

const log = (line: string): void => void process.stdout.write(`${line}\n`);
const { values } = parseArgs({ options: { out: { type: "string", default: "swarmnet-demo-output" } } });
const outDir = resolve(values.out);

// The gateway's files: a folder of sensor logs of mixed sizes, generated fresh and removed at the end.
const served = await mkdtemp(join(tmpdir(), "swarmnet-demo-"));
const FILES = 48;
let folderBytes = 0;
await mkdir(join(served, "sensor-logs", "archive"), { recursive: true });
for (let i = 0; i < FILES; i++) {
  const size = i % 12 === 0 ? 2 * 1024 * 1024 : 64 * 1024 + i * 4096;
  folderBytes += size;
  await writeFile(join(served, "sensor-logs", i % 3 === 0 ? "archive" : ".", `node-${String(i).padStart(2, "0")}.log`), randomBytes(size));
}

const gateway = new Gateway({
  host: "127.0.0.1",
  port: Number(process.env["SWARMNET_PORT"] ?? 0),
  maxPoolSize: 5,
  fileRoots: [served],
  downloadDir: join(served, "incoming"),
});
// pynetwork's tutorial subroutines: disk usage as bytes, and an IO pin setter fed by a batch send.
gateway.addSubroutine("mount_usage", (requestId: number) => toBytes(DataType.int, 40 + (requestId % 60)));
gateway.addSubroutine("status", async (unit: string, kwargs: Kwargs) => ({
  unit,
  uptimeS: Math.round(process.uptime()),
  verbose: kwargs["verbose"] === true,
}));
gateway.addSubroutine("set_io", (pin: number, value: boolean, kwargs: Kwargs & { buffer: Uint8Array }) => {
  log(`  [gateway] set_io(pin=${pin}, value=${value}) with ${kwargs.buffer.length} bytes: "${Buffer.from(kwargs.buffer).toString()}"`);
  return pin;
});
// A sensor as a generator: the client grants credit, the gateway never runs ahead of it.
gateway.addSubroutine("sensor", function* (pin: number, readings: number) {
  for (let i = 0; i < readings; i++) yield [i, { pin, celsius: Math.round((21 + 3 * Math.sin(i / 50)) * 100) / 100 }];
});
await gateway.start();
log(`gateway listening on ${gateway.endpoint} (pool ${gateway.options.maxPoolSize})`);

const controller = new Controller({ port: gateway.port, downloadDir: join(outDir, "sensor-logs"), verbose: true });
try {
  const client = await controller.getClient();
  log(`client connected, handler ${client.handlerId}`);

  const t0 = performance.now();
  const rounds = 1000;
  for (let i = 0; i < rounds; i++) await client.ping("0123456789abcdef");
  const us = ((performance.now() - t0) * 1000) / rounds;
  log(`ping: "${await client.ping("hello")}" (mean round trip ${us.toFixed(0)} us over ${rounds}, same process)`);

  const usage = await client.getSubroutineBatch("mount_usage", [7]);
  log(`batch get mount_usage(7) -> ${fromBytes(DataType.int, usage)}% (${usage.length} bytes)`);
  log(`batch get status("s", verbose) -> ${JSON.stringify(await client.getSubroutineBatch("status", ["s"], { verbose: true }))}`);

  const pin = await client.sendSubroutineBatch("set_io", strToBytes("LED on"), [4, true]);
  log(`batch send set_io -> ${pin}`);

  await client
    .getSubroutineBatch("no_such_subroutine")
    .catch((e: { code: string; message: string }) => log(`unknown subroutine -> ${e.code}: ${e.message}`));

  const swarm = await controller.getSwarm(3);
  const handlers = await Promise.all(swarm.clients.map(async (c) => (await c.ping(`h${c.handlerId}`)) as string));
  log(`swarm of ${swarm.size}: ${handlers.join(", ")}; pool now ${gateway.snapshot().supervisor.poolSize}/${gateway.options.maxPoolSize}`);
  await swarm.close();

  const readings = 20_000;
  const s0 = performance.now();
  let last: { pin: number; celsius: number } | undefined;
  let received = 0;
  for await (const [, reading] of client.stream<{ pin: number; celsius: number }>("sensor", [4, readings])) {
    last = reading;
    received++;
  }
  const streamS = (performance.now() - s0) / 1000;
  log(`stream sensor(4): ${received} readings, last ${JSON.stringify(last)}`);

  await rm(join(outDir, "sensor-logs"), { recursive: true, force: true }); // a fresh download each run
  const files = await controller.getSwarm(4);
  const d0 = performance.now();
  const paths = await files.getFilesFromGateway({ folder: "sensor-logs" });
  const downloadS = (performance.now() - d0) / 1000;
  await files.close();
  log(`swarm of 4 downloaded ${paths.length} files (${(folderBytes / 2 ** 20).toFixed(1)} MiB) into ${join(outDir, "sensor-logs")}`);

  log("summary:");
  log(`  ping        ${us.toFixed(0)} us mean round trip`);
  log(`  stream      ${Math.round(received / streamS).toLocaleString("en-US")} items/s (${received} readings in ${streamS.toFixed(2)} s)`);
  log(
    `  download    ${(folderBytes / 2 ** 20 / downloadS).toFixed(1)} MiB/s (${paths.length} files in ${downloadS.toFixed(2)} s over a swarm of 4)`,
  );

  await client.closeGateway();
  await gateway.closed;
  log("gateway closed by the client; demo done");
} finally {
  await controller.close();
  await gateway.stop();
  await rm(served, { recursive: true, force: true });
}
