/**
 * `npm start`: a gateway on 127.0.0.1 with example subroutines, a controller
 * that pings, calls and sends, then everything shuts down by itself.
 */
import { Controller, DataType, Gateway, fromBytes, strToBytes, toBytes, type Kwargs } from "../runtime/index.js";

const log = (line: string): void => void process.stdout.write(`${line}\n`);

const gateway = new Gateway({ host: "127.0.0.1", port: Number(process.env["SWARMNET_PORT"] ?? 0), maxPoolSize: 5 });
// pynetwork's tutorial subroutines: disk usage as bytes, and an IO pin setter fed by a batch send.
gateway.addSubroutine("mount_usage", (requestId: number) => toBytes(DataType.int, 40 + (requestId % 60)));
gateway.addSubroutine("status", async (unit: string, kwargs: Kwargs) => ({ unit, uptimeS: Math.round(process.uptime()), verbose: kwargs["verbose"] === true }));
gateway.addSubroutine("set_io", (pin: number, value: boolean, kwargs: Kwargs & { buffer: Uint8Array }) => {
  log(`  [gateway] set_io(pin=${pin}, value=${value}) with ${kwargs.buffer.length} bytes: "${Buffer.from(kwargs.buffer).toString()}"`);
  return pin;
});
await gateway.start();
log(`gateway listening on ${gateway.endpoint} (pool ${gateway.options.maxPoolSize})`);

const controller = new Controller({ port: gateway.port });
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

  await client.getSubroutineBatch("no_such_subroutine").catch((e: { code: string; message: string }) =>
    log(`unknown subroutine -> ${e.code}: ${e.message}`),
  );

  const swarm = await controller.getSwarm(3);
  const handlers = await Promise.all(swarm.clients.map(async (c) => (await c.ping(`h${c.handlerId}`)) as string));
  log(`swarm of ${swarm.size}: ${handlers.join(", ")}; pool now ${gateway.snapshot().supervisor.poolSize}/${gateway.options.maxPoolSize}`);
  await swarm.close();

  await client.closeGateway();
  await gateway.closed;
  log("gateway closed by the client; demo done");
} finally {
  await controller.close();
  await gateway.stop();
}
