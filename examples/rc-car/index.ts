/**
 * pynetwork's RC-car tutorial, done as actors: the car (a gateway) streams
 * camera frames with proximity and speed readings and takes steering
 * commands; the laptop runs a `driver` machine whose two children are
 * swarmnet client actors. Mid-drive the car's gateway restarts; the driver
 * goes `reconnecting` and drives on.
 *
 *   npm run example:rc-car
 *   npm run example:rc-car -- --inspect      # also print the actor tree one inspect callback saw
 */
import { createServer } from "node:net";
import { parseArgs } from "node:util";
import { Actor, createActor, type AnyActorRef, type InspectionEvent } from "xstate";
import type { Gateway } from "../../runtime/index.js";
import { startCar } from "./car.js";
import { driverMachine } from "./driver.js";

const { values } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    tick: { type: "string", default: "20" },
    inspect: { type: "boolean", default: false },
  },
});
const log = (line: string): void => void process.stdout.write(`${line}\n`);

/** Readings to drive on after the reconnect before parking. */
const DRIVE_ON_READINGS = 15;

/**
 * The car restarts on the same port. A port from the OS (bind 0) lies in the
 * ephemeral range, where the kernel may give it to an outgoing connection
 * between the stop and the restart; pick one below that range instead.
 */
async function quietPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const candidate = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once("error", () => resolve(false));
      probe.listen(candidate, values.host, () => probe.close(() => resolve(true)));
    });
    if (free) return candidate;
  }
  throw new Error("no free port in 20000-31999");
}

let car: Gateway = await startCar({ host: values.host, port: await quietPort(), log });
const port = car.port;
log(`[car] gateway on ${car.endpoint}`);

// One inspect callback for the whole laptop side: the driver, its client actors and theirs.
const actors = new Map<string, AnyActorRef>();
const inspect = (event: InspectionEvent): void => {
  if (event.type === "@xstate.actor" && event.actorRef instanceof Actor) actors.set(event.actorRef.sessionId, event.actorRef);
};

const driver = createActor(driverMachine, {
  id: "driver",
  input: { endpoint: car.endpoint, tickMs: Number(values.tick) },
  inspect,
});

const sequence: string[] = [];
let restarted = false;
let parking = false;

async function restartCar(): Promise<void> {
  log("[car] restarting the car's gateway");
  await car.stop();
  // Same port: the driver only knows this one endpoint. The new car starts with the road clear.
  car = await startCar({ host: values.host, port, obstacle: false, log });
  log(`[car] gateway back on ${car.endpoint}`);
}

const finished = new Promise<void>((resolve, reject) => {
  driver.subscribe({
    next: (snapshot) => {
      const state = typeof snapshot.value === "string" ? snapshot.value : `${Object.values(snapshot.value)[0]}`;
      if (sequence.at(-1) !== state) {
        sequence.push(state);
        const { proximityCm, speedKmh, lastError } = snapshot.context;
        const detail =
          state === "braking" ? ` (obstacle at ${proximityCm} cm, ${speedKmh} km/h)` : state === "reconnecting" ? ` (${lastError})` : "";
        log(`[driver] ${state}${detail}`);
        // The second time the driver cruises (obstacle passed), pull the car's gateway from under it.
        if (state === "cruising" && sequence.includes("stopped") && !restarted) {
          restarted = true;
          restartCar().catch(reject);
        }
      }
      if (state === "cruising" && sequence.includes("reconnecting") && snapshot.context.readings >= DRIVE_ON_READINGS && !parking) {
        parking = true;
        driver.send({ type: "park" });
      }
    },
    complete: () => resolve(),
    error: reject,
  });
});

driver.start();
try {
  await finished;
  const { steeringSent, steeringAcked, reconnects } = driver.getSnapshot().context;
  log(`steering commands: ${steeringSent} sent, ${steeringAcked} acknowledged; reconnects: ${reconnects}`);
  log(`driver states: ${sequence.join(" -> ")}`);
  if (values.inspect) {
    // xstate gives an invoked or spawned actor its parent in its (public) options.
    const path = (ref: AnyActorRef): string => {
      const parent = ref instanceof Actor ? ref.options.parent : undefined;
      return parent ? `${path(parent)} > ${ref.id}` : ref.id;
    };
    log("actor tree (one inspect callback):");
    for (const line of new Set([...actors.values()].map(path))) log(`  ${line}`);
  }
} finally {
  driver.stop();
  await car.stop();
}
log("rc-car done");
