/**
 * pynetwork's Raspberry Pi use case: a gateway (the Pi) streams simulated
 * sensor readings from three generators; a controller (the laptop) consumes
 * them over a swarm of three, one stream per connection, and sends a control
 * command back with a batch send when the temperature runs high.
 *
 *   npm run example:sensor-stream                      # both sides in one process
 *   npm run example:sensor-stream -- --role gateway --port 1857
 *   npm run example:sensor-stream -- --role controller --host 127.0.0.1 --port 1857
 */
import { parseArgs } from "node:util";
import { Controller, Gateway, type Kwargs } from "../../runtime/index.js";

const { values } = parseArgs({
  options: {
    role: { type: "string", default: "both" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    readings: { type: "string", default: "50" },
  },
});
const log = (line: string): void => void process.stdout.write(`${line}\n`);

interface Reading {
  sensor: string;
  t: number;
  value: number;
}

/** The gateway's fan, switched by the `set_fan` subroutine: while it runs, every sensor reads 2 lower. */
let fan = false;

/** A simulated sensor: `count` readings, one every `periodMs`, as [ident, reading] pairs. */
function sensor(name: string, base: number, swing: number) {
  return async function* (count: number, periodMs: number, kwargs: Kwargs) {
    try {
      for (let i = 0; i < count; i++) {
        await new Promise((r) => setTimeout(r, periodMs));
        const value = Math.round((base + swing * Math.sin(i / 5) + (fan ? -2 : 0)) * 10) / 10;
        yield [i, { sensor: name, t: Date.now(), value } satisfies Reading];
      }
    } finally {
      // Runs on normal end and on abort alike: release the "hardware".
      if (kwargs["log"] === true) log(`  [gateway] sensor ${name} closed`);
    }
  };
}

async function startGateway(port: number): Promise<Gateway> {
  const gw = new Gateway({ host: values.host, port, maxPoolSize: 4 });
  gw.addSubroutine("temperature", sensor("temperature", 24, 6));
  gw.addSubroutine("humidity", sensor("humidity", 55, 10));
  gw.addSubroutine("pressure", sensor("pressure", 1013, 4));
  gw.addSubroutine("set_fan", (on: boolean, kwargs: Kwargs & { buffer: Uint8Array }) => {
    log(`  [gateway] fan ${on ? "ON" : "off"} (command: "${Buffer.from(kwargs.buffer).toString()}")`);
    fan = on;
    return on ? 1 : 0;
  });
  await gw.start();
  log(`gateway streaming sensors on ${gw.endpoint}`);
  return gw;
}

async function runController(host: string, port: number, readings: number): Promise<void> {
  const controller = new Controller({ host, port });
  try {
    const swarm = await controller.getSwarm(3);
    const [tempClient, humClient, presClient] = swarm.clients as [
      (typeof swarm.clients)[0],
      (typeof swarm.clients)[0],
      (typeof swarm.clients)[0],
    ];
    const stats = new Map<string, { n: number; min: number; max: number }>();
    let fanOn = false;
    const record = (r: Reading): void => {
      const s = stats.get(r.sensor) ?? { n: 0, min: Infinity, max: -Infinity };
      stats.set(r.sensor, { n: s.n + 1, min: Math.min(s.min, r.value), max: Math.max(s.max, r.value) });
    };
    const control = humClient; // a batch send can go over any idle client; here one whose stream is short
    await Promise.all([
      tempClient.getSubroutineStream<Reading>(
        "temperature",
        async (_name, _ident, r) => {
          record(r);
          if (r.value > 28 && !fanOn) {
            fanOn = true;
            // Control goes back over a client of its own, while this stream keeps flowing.
            await presClient.sendSubroutineBatch("set_fan", Buffer.from(`too hot: ${r.value} C`), [true]);
          }
        },
        (name) => log(`${name}: end of stream`),
        [readings, 2],
        { log: true },
      ),
      control.getSubroutineStream<Reading>(
        "humidity",
        (_n, _i, r) => void record(r),
        (name) => log(`${name}: end of stream`),
        [readings, 2],
      ),
      // Pressure: take ten readings, then abort the stream (the callback returns false).
      (async () => {
        let n = 0;
        for await (const [, r] of presClient.stream<Reading>("pressure", [readings, 2], { log: true })) {
          record(r as Reading);
          if (++n === 10) break;
        }
        log("pressure: aborted after 10 readings");
      })(),
    ]);
    for (const [name, s] of stats) log(`${name}: ${s.n} readings, min ${s.min}, max ${s.max}`);
    log(`fan ${fanOn ? "switched on" : "never needed"}`);
    await swarm.close();
  } finally {
    await controller.close();
  }
}

const readings = Number(values.readings);
if (values.role === "gateway") {
  const gw = await startGateway(Number(values.port) || 1857);
  const stop = (): void => void gw.stop();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  await gw.closed;
} else if (values.role === "controller") {
  await runController(values.host, Number(values.port) || 1857, readings);
} else {
  const gw = await startGateway(Number(values.port));
  try {
    await runController(values.host, gw.port, readings);
  } finally {
    await gw.stop();
  }
  log("sensor-stream done");
}
